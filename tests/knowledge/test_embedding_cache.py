from __future__ import annotations

from pathlib import Path

import numpy as np

from openify.knowledge.embedding_cache import SqliteEmbeddingCache, embed_chunks
from tests.knowledge.conftest import CountingUsem3


def test_unchanged_chunks_are_never_embedded_twice(embedding: CountingUsem3, tmp_path: Path) -> None:
    cache = SqliteEmbeddingCache(tmp_path / "cache.sqlite3")
    texts = ["长江是中国最长的河流。", "The wing produces lift.", "长江是中国最长的河流。"]
    first = embed_chunks(embedding, texts, cache)
    assert first.shape == (3, 512) and embedding.embedded_texts == 2  # the duplicate once
    np.testing.assert_allclose(first[0], first[2])
    assert float(first[1] @ first[1]) == np.float32(1.0) or abs(float(first[1] @ first[1]) - 1) < 1e-4

    again = embed_chunks(embedding, [*texts, "A new chunk."], cache)
    assert embedding.embedded_texts == 3  # only the new chunk
    np.testing.assert_allclose(again[:3], first)

    reopened = SqliteEmbeddingCache(tmp_path / "cache.sqlite3")  # survives a restart
    embed_chunks(embedding, texts, reopened)
    assert embedding.embedded_texts == 3


def test_batches_of_misses(embedding: CountingUsem3, tmp_path: Path) -> None:
    cache = SqliteEmbeddingCache(tmp_path / "cache.sqlite3")
    embed_chunks(embedding, [f"sentence {i}" for i in range(10)], cache, batch_size=4)
    assert (embedding.calls, embedding.embedded_texts) == (3, 10)


def test_cache_is_per_model(embedding: CountingUsem3, tmp_path: Path) -> None:
    cache = SqliteEmbeddingCache(tmp_path / "cache.sqlite3")
    embed_chunks(embedding, ["hello"], cache)
    other = CountingUsem3()
    other.name = "another-model"
    embed_chunks(other, ["hello"], cache)
    assert other.embedded_texts == 1
