"""Blob files (uploads, documents): content-addressed-free, keyed files under the data directory.

Writes go to a temporary file first and are renamed into place, so a killed process never leaves a
half-written blob under a real key.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,250}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"unsafe blob key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = _written_beside(path, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Write `data` under `key` unless something is there already: of processes racing, one wins for all."""
        path = self._path(key)
        if path.is_file():
            return
        tmp = _written_beside(path, data)
        try:
            os.link(tmp, path)  # unlike a rename, a link never replaces what another process put first
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def path(self, key: str) -> Path:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def _written_beside(path: Path, data: bytes) -> Path:
    """`data` in a new temporary file in `path`'s folder, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)
