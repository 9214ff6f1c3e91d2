"""Embeddings cached by content hash, so an unchanged chunk is never embedded twice.

The key is (model name, sha256 of the text): re-indexing a document, or the same paragraph in two
documents or datasets, reuses the stored vector. The default cache is one SQLite file in the data dir.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from openify.providers.base import EmbeddingModel

BATCH_SIZE = 64  # texts per model call


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache(Protocol):
    """Stores vectors by (model, text key)."""

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """The cached vectors among `keys`; missing keys are absent from the result."""
        ...

    def put_many(self, model: str, vectors: Mapping[str, npt.NDArray[np.float32]]) -> None:
        """Store vectors under their keys."""
        ...


class SqliteEmbeddingCache:
    """The default cache: a table of float32 blobs in one SQLite file (WAL, safe across threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embedding (model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (model, key)) WITHOUT ROWID"
        )
        self._db.commit()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        out: dict[str, npt.NDArray[np.float32]] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
                part = unique[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, vector FROM embedding WHERE model = ? AND key IN ({marks})",  # noqa: S608  # only placeholders are interpolated
                    [model, *part],
                )
                out.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return out

    def put_many(self, model: str, vectors: Mapping[str, npt.NDArray[np.float32]]) -> None:
        rows = [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO embedding (model, key, vector) VALUES (?, ?, ?)", rows)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def embed_chunks(
    model: EmbeddingModel, texts: Sequence[str], cache: EmbeddingCache | None = None, batch_size: int = BATCH_SIZE
) -> npt.NDArray[np.float32]:
    """Vectors for `texts` (n, model.dimensions), float32: cached ones read back, the misses embedded in
    batches (each distinct text once) and stored."""
    keys = [text_key(t) for t in texts]
    found = cache.get_many(model.name, keys) if cache is not None else {}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        text_of = dict(zip(keys, texts, strict=True))
        fresh: dict[str, npt.NDArray[np.float32]] = {}
        for start in range(0, len(missing), batch_size):
            part = missing[start : start + batch_size]
            vectors = model.embed([text_of[k] for k in part])
            fresh.update(zip(part, (np.asarray(v, dtype=np.float32) for v in vectors), strict=True))
        if cache is not None:
            cache.put_many(model.name, fresh)
        found = {**found, **fresh}
    out = np.zeros((len(texts), model.dimensions), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out
