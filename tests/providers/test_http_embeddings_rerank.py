"""OpenAI-compatible embeddings and Jina/Cohere-style rerank over real HTTP."""

from __future__ import annotations

import math

import pytest

from openify.errors import ProviderQuotaExceeded
from tests.fake_llm.server import FakeLLM, hash_vector
from tests.providers.conftest import API_KEY, FAST, MakeManager


def test_embeddings_are_batched_in_order_and_normalised(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager({"siliconflow": {"base_url": fake_llm.base_url, "api_key": API_KEY, **FAST}})
    model = manager.embedding("langgenius/siliconflow/siliconflow", "BAAI/bge-m3")
    texts = [f"text {i}" for i in range(70)]  # two batches of at most 64
    vectors = model.embed(texts)
    assert [len(b["input"]) for b in fake_llm.received] == [64, 6]
    assert vectors[69] == pytest.approx(hash_vector("text 69", 16))
    assert math.isclose(sum(v * v for v in vectors[0]), 1.0, rel_tol=1e-9)
    assert model.dimensions == 16 and model.embed_query("q") == pytest.approx(hash_vector("q", 16))
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {API_KEY}"


def test_embedding_errors_are_retried_and_mapped(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager({"x": {"base_url": fake_llm.base_url, **FAST}})
    fake_llm.fail_next(503)
    assert len(manager.embedding("x", "e").embed(["a"])) == 1
    fake_llm.fail_next(429, times=3)
    with pytest.raises(ProviderQuotaExceeded):
        manager.embedding("x", "e").embed(["a"])


def test_rerank_scores_best_first(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager({"jina": {"base_url": fake_llm.base_url, "api_key": API_KEY, **FAST}})
    docs = ["cats are small", "the weather today", "small cats purr"]
    ranked = manager.rerank("langgenius/jina/jina", "jina-reranker-v2").rerank("small cats", docs, top_n=2)
    assert [i for i, _ in ranked] == [0, 2] or [i for i, _ in ranked] == [2, 0]
    assert all(0 <= s <= 1 for _, s in ranked) and ranked[0][1] >= ranked[1][1]
    sent = fake_llm.received[-1]
    assert sent == {
        "model": "jina-reranker-v2",
        "query": "small cats",
        "documents": docs,
        "return_documents": False,
        "top_n": 2,
    }
