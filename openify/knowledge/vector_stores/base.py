"""The vector store contract. Stores hold (chunk id, vector) only: metadata filters are resolved to
chunk ids in the database first and passed as `filter_ids`, so every backend filters the same way."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32] | Sequence[Sequence[float]]


class VectorStore(Protocol):
    """A per-dataset index of L2-normalised vectors, searched by cosine similarity."""

    name: ClassVar[str]
    dimensions: int

    def add(self, ids: Sequence[str], vectors: Vectors) -> None:
        """Store vectors under chunk ids; an id already present is replaced."""
        ...

    def delete(self, ids: Iterable[str]) -> None:
        """Remove chunk ids; they stop matching at once. Unknown ids are ignored."""
        ...

    def search(
        self, vector: Sequence[float] | npt.NDArray[np.float32], top_k: int, filter_ids: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunks as (chunk id, cosine similarity), best first; only ids in `filter_ids` if given."""
        ...

    def count(self) -> int:
        """Vectors in the store."""
        ...

    def persist(self) -> None:
        """Write the store to its directory."""
        ...


class VectorStoreFactory(Protocol):
    """What `r.vector_stores` holds: opens (or creates) the store kept in a directory."""

    def __call__(self, directory: Path | None, dimensions: int) -> VectorStore: ...


def as_matrix(vectors: Vectors | Sequence[float], dimensions: int) -> npt.NDArray[np.float32]:
    """Vectors as a C-contiguous float32 (n, dimensions) matrix, rows L2-normalised."""
    m = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dimensions))
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(m / norms, dtype=np.float32)


def top_k_of(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """Indices of the k highest scores, best first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")].astype(np.int64)
