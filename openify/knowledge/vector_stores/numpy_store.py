"""Exact search with numpy: one matrix product per query. Right for small datasets and as the
ground truth for the approximate stores."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from openify.knowledge.vector_stores.base import Vectors, as_matrix, top_k_of
from openify.registry import Registries


class NumpyVectorStore:
    name: ClassVar[str] = "numpy"

    def __init__(self, directory: Path | None, dimensions: int) -> None:
        self.directory, self.dimensions = directory, dimensions
        self._lock = threading.RLock()
        self._matrix = np.zeros((0, dimensions), dtype=np.float32)
        self._n = 0
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        if directory is not None and (directory / "ids.json").exists():
            self._ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
            self._matrix = np.load(directory / "vectors.npy")
            self._n = len(self._ids)
            self._row = {cid: i for i, cid in enumerate(self._ids)}

    def add(self, ids: Sequence[str], vectors: Vectors) -> None:
        m = as_matrix(vectors, self.dimensions)
        if len(m) != len(ids):
            raise ValueError("ids and vectors differ in length")
        with self._lock:
            self.delete(ids)
            need = self._n + len(ids)
            if need > len(self._matrix):
                rows = max(need + need // 4, 2 * len(self._matrix), 1024)
                grown = np.zeros((rows, self.dimensions), dtype=np.float32)
                grown[: self._n] = self._matrix[: self._n]
                self._matrix = grown
            self._matrix[self._n : need] = m
            for i, cid in enumerate(ids):
                self._row[cid] = self._n + i
            self._ids.extend(ids)
            self._n = need

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for cid in ids:
                row = self._row.pop(cid, None)
                if row is None:
                    continue
                last = self._n - 1
                if row != last:  # move the last row into the hole
                    self._matrix[row] = self._matrix[last]
                    moved = self._ids[last]
                    self._ids[row] = moved
                    self._row[moved] = row
                self._ids.pop()
                self._n = last

    def search(
        self, vector: Sequence[float] | npt.NDArray[np.float32], top_k: int, filter_ids: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        q = as_matrix(vector, self.dimensions)[0]
        with self._lock:
            if filter_ids is None:
                scores = self._matrix[: self._n] @ q
                return [(self._ids[i], float(scores[i])) for i in top_k_of(scores, top_k)]
            rows = np.fromiter((r for cid in filter_ids if (r := self._row.get(cid)) is not None), dtype=np.int64)
            scores = self._matrix[rows] @ q
            return [(self._ids[rows[i]], float(scores[i])) for i in top_k_of(scores, top_k)]

    def count(self) -> int:
        return self._n

    def persist(self) -> None:
        if self.directory is None:
            raise ValueError("this store has no directory")
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            np.save(self.directory / "vectors.npy", self._matrix[: self._n])
            tmp = self.directory / "ids.json.tmp"
            tmp.write_text(json.dumps(self._ids), encoding="utf-8")
            tmp.replace(self.directory / "ids.json")


def register(r: Registries) -> None:
    r.vector_stores.register(NumpyVectorStore.name, NumpyVectorStore)
