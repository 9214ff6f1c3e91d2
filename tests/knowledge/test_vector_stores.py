from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openify.knowledge.vector_stores.base import VectorStore
from openify.registry import Registries

BACKENDS = ["hnswlib", "numpy"]


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _store(r: Registries, backend: str, directory: Path | None, dim: int = 32) -> VectorStore:
    store: VectorStore = r.vector_stores.get(backend)(directory, dim)
    return store


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_first_with_cosine_scores(registries: Registries, backend: str) -> None:
    x = _vectors(3000)
    store = _store(registries, backend, None)
    store.add([f"c{i}" for i in range(3000)], x)  # grows past the initial capacity
    assert store.count() == 3000
    hits = store.search(x[42], 5)
    assert hits[0][0] == "c42" and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_and_filter(registries: Registries, backend: str) -> None:
    x = _vectors(200)
    store = _store(registries, backend, None)
    store.add([f"c{i}" for i in range(200)], x)
    store.delete(["c7", "missing"])
    assert "c7" not in [cid for cid, _ in store.search(x[7], 10)]
    assert store.count() == 199
    hits = store.search(x[7], 10, filter_ids={"c1", "c2", "c7"})
    assert sorted(cid for cid, _ in hits) == ["c1", "c2"]
    store.add(["c1"], x[7:8])  # replacing moves c1 to the new vector
    assert store.search(x[7], 1)[0][0] == "c1"
    assert store.count() == 199


@pytest.mark.parametrize("backend", BACKENDS)
def test_persist_round_trip(registries: Registries, backend: str, tmp_path: Path) -> None:
    x = _vectors(500)
    store = _store(registries, backend, tmp_path / backend)
    store.add([f"c{i}" for i in range(500)], x)
    store.delete(["c3"])
    store.persist()
    again = _store(registries, backend, tmp_path / backend)
    assert again.count() == 499
    assert again.search(x[10], 3) == pytest.approx(store.search(x[10], 3))
    assert "c3" not in [cid for cid, _ in again.search(x[3], 5)]
    again.add(["new"], x[3:4])
    assert again.search(x[3], 1)[0][0] == "new"


def test_hnsw_recall_against_exact(registries: Registries) -> None:
    x = _vectors(5000, 64, seed=1)
    ids = [f"c{i}" for i in range(5000)]
    hnsw, exact = _store(registries, "hnswlib", None, 64), _store(registries, "numpy", None, 64)
    hnsw.add(ids, x)
    exact.add(ids, x)
    queries = _vectors(50, 64, seed=2)
    found = sum(len({c for c, _ in hnsw.search(q, 10)} & {c for c, _ in exact.search(q, 10)}) for q in queries)
    assert found / 500 >= 0.95


def test_hnsw_large_filters_post_filter_the_graph(registries: Registries) -> None:
    from openify.knowledge.vector_stores.hnsw import HnswVectorStore

    x = _vectors(1000, 32, seed=3)
    ids = [f"c{i}" for i in range(1000)]
    hnsw = HnswVectorStore(None, 32, exact_filter_max=10)  # every filter here takes the graph path
    exact = _store(registries, "numpy", None)
    hnsw.add(ids, x)
    exact.add(ids, x)
    allowed = set(ids[::3])
    for q in _vectors(20, 32, seed=4):
        got, want = hnsw.search(q, 5, allowed), exact.search(q, 5, allowed)
        assert {c for c, _ in got} <= allowed
        assert len({c for c, _ in got} & {c for c, _ in want}) >= 4
