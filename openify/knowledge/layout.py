"""Where knowledge files live under the data dir, and the two calls that keep indexes in step.

    <data_dir>/knowledge/embedding_cache.sqlite3        embeddings by (model, text hash), all datasets
    <data_dir>/knowledge/datasets/<dataset_id>/keyword/  BM25 tokens and matrix
    <data_dir>/knowledge/datasets/<dataset_id>/vectors/<backend>/   the vector store

Deleting a dataset is deleting its directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openify.knowledge.embedding_cache import EmbeddingCache, embed_chunks
from openify.knowledge.retrieval import DatasetIndexes
from openify.providers.base import EmbeddingModel
from openify.registry import Registries


def embedding_cache_path(data_dir: Path) -> Path:
    return data_dir / "knowledge" / "embedding_cache.sqlite3"


def dataset_dir(data_dir: Path, dataset_id: str) -> Path:
    if not dataset_id or "/" in dataset_id or "\\" in dataset_id or dataset_id in (".", ".."):
        raise ValueError(f"bad dataset id {dataset_id!r}")
    return data_dir / "knowledge" / "datasets" / dataset_id


def open_indexes(
    r: Registries,
    data_dir: Path,
    dataset_id: str,
    embedding: EmbeddingModel | None = None,
    vector_backend: str = "hnswlib",
    keyword_backend: str = "bm25",
) -> DatasetIndexes:
    """Open (or create) a dataset's indexes; vectors only when an embedding model is given (high_quality)."""
    base = dataset_dir(data_dir, dataset_id)
    keyword: Any = r.keyword_indexes.get(keyword_backend)(base / "keyword")
    vectors = None
    if embedding is not None:
        vectors = r.vector_stores.get(vector_backend)(base / "vectors" / vector_backend, embedding.dimensions)
    return DatasetIndexes(keyword, vectors, embedding)


def index_chunks(
    indexes: DatasetIndexes,
    ids: Sequence[str],
    texts: Sequence[str],
    cache: EmbeddingCache | None = None,
) -> None:
    """Add (or replace) chunks in every index of the dataset: `texts` are what is matched (a QA question,
    a hierarchical child, a text chunk). Call `persist` on the indexes when a batch is done."""
    if indexes.vectors is not None and indexes.embedding is not None:
        indexes.vectors.add(ids, embed_chunks(indexes.embedding, texts, cache))
    indexes.keyword.add(ids, texts)


def remove_chunks(indexes: DatasetIndexes, ids: Iterable[str]) -> None:
    """Remove chunks (deleted or disabled) from every index of the dataset; effective at once."""
    ids = list(ids)
    indexes.keyword.delete(ids)
    if indexes.vectors is not None:
        indexes.vectors.delete(ids)


def persist(indexes: DatasetIndexes) -> None:
    indexes.keyword.persist()
    if indexes.vectors is not None:
        indexes.vectors.persist()


class OpenIndexes:
    """Datasets' indexes kept open in this process: loading a 100k-chunk dataset takes seconds, and the
    indexing job and the retrieval endpoint must share one in-memory copy, or a delete would not show."""

    def __init__(self, r: Registries, data_dir: Path, vector_backend: str = "hnswlib") -> None:
        self._r, self._data_dir, self._backend = r, data_dir, vector_backend
        self._open: dict[str, DatasetIndexes] = {}
        self._lock = threading.Lock()

    def get(self, dataset_id: str, embedding: EmbeddingModel | None = None) -> DatasetIndexes:
        """The dataset's indexes, opened on first use (with vectors when `embedding` is given)."""
        with self._lock:
            found = self._open.get(dataset_id)
            if found is None or (embedding is not None and found.vectors is None):
                found = open_indexes(self._r, self._data_dir, dataset_id, embedding, self._backend)
                self._open[dataset_id] = found
            return found

    def drop(self, dataset_id: str) -> None:
        """Forget a dataset (deleted, or its embedding model changed); its files are the caller's to remove."""
        with self._lock:
            self._open.pop(dataset_id, None)
