"""Blob files are written atomically and refuse keys that escape their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from openify.storage.blobs import BlobStore


def test_put_get_delete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.put("uploads/a/file.txt", "你好".encode())
    assert store.get("uploads/a/file.txt") == "你好".encode()
    assert store.exists("uploads/a/file.txt") and not store.exists("uploads/a/x")
    store.delete("uploads/a/file.txt")
    assert not store.exists("uploads/a/file.txt")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", ""])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        BlobStore(tmp_path).put(key, b"x")


def test_no_temp_files_left_behind(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.put("k/one", b"1")
    store.put("k/one", b"2")
    assert store.get("k/one") == b"2"
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["one"]
