"""Embeddings come from the dataset's provider through the cache: unchanged chunks are never embedded
twice (re-indexing, a second dataset, re-enabling), and a failing provider is a document error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from openify.settings import Settings
from tests.api.knowledge import add_text, create_dataset, retrieve, wait_batch
from tests.conftest import settings_with_providers, stand_in_provider
from tests.fake_llm.server import FakeLLM

H = dict[str, str]
TEXT = "Tides rise twice a day.\n\nThe moon pulls the sea.\n\nHarbours flood at spring tide."
EMB = {"embedding_model_provider": "fakeemb", "embedding_model": "emb-1"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    entry = stand_in_provider(fake_llm.base_url, **{"emb-1": {"model_type": "text-embedding"}})
    return settings_with_providers(tmp_path, database_url, {"fakeemb": entry})


def _embedded(fake_llm: FakeLLM) -> list[str]:
    """Every text the provider was asked to embed."""
    out: list[str] = []
    for body in fake_llm.received:
        value: Any = body.get("input")
        if "input" in body and body.get("model") == "emb-1":
            out += value if isinstance(value, list) else [value]
    return out


async def test_unchanged_chunks_are_embedded_once(client: httpx.AsyncClient, dataset_key: H, fake_llm: FakeLLM) -> None:
    rule = {
        "mode": "custom",
        "rules": {"pre_processing_rules": [], "segmentation": {"separator": "\\n\\n", "max_tokens": 100}},
    }
    ds = (await create_dataset(client, dataset_key, "tides", indexing_technique="high_quality", **EMB))["id"]
    doc = await add_text(client, dataset_key, ds, "tides", TEXT, indexing_technique="high_quality", process_rule=rule)
    first = _embedded(fake_llm)
    assert sorted(set(first) - {"dimensions"}) == sorted(TEXT.split("\n\n"))
    fake_llm.received.clear()
    # the same text again, in the same document and in another dataset: nothing new to embed
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{doc['document']['id']}/update-by-text",
        headers=dataset_key,
        json={"name": "tides", "text": TEXT, "process_rule": rule},
    )
    assert (await wait_batch(client, dataset_key, ds, r.json()["batch"]))[0]["indexing_status"] == "completed"
    other = (await create_dataset(client, dataset_key, "copy", indexing_technique="high_quality", **EMB))["id"]
    await add_text(client, dataset_key, other, "copy", TEXT, indexing_technique="high_quality", process_rule=rule)
    assert [t for t in _embedded(fake_llm) if t != "dimensions"] == []
    # one changed paragraph: only it is embedded
    changed = TEXT.replace("The moon pulls the sea.", "The moon pulls the ocean.")
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{doc['document']['id']}/update-by-text",
        headers=dataset_key,
        json={"name": "tides", "text": changed, "process_rule": rule},
    )
    await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert [t for t in _embedded(fake_llm) if t != "dimensions"] == ["The moon pulls the ocean."]
    semantic = {
        "search_method": "semantic_search",
        "top_k": 3,
        "reranking_enable": False,
        "score_threshold_enabled": False,
    }
    assert len(await retrieve(client, dataset_key, ds, "moon", **semantic)) == 3


async def test_provider_failure_is_a_document_error(
    client: httpx.AsyncClient, dataset_key: H, fake_llm: FakeLLM
) -> None:
    ds = (await create_dataset(client, dataset_key, "down", indexing_technique="high_quality", **EMB))["id"]
    fake_llm.fail_next(500, times=10)
    r = await client.post(
        f"/v1/datasets/{ds}/document/create-by-text",
        headers=dataset_key,
        json={"name": "x", "text": "a brand new sentence", "indexing_technique": "high_quality"},
    )
    status = (await wait_batch(client, dataset_key, ds, r.json()["batch"]))[0]
    assert status["indexing_status"] == "error" and status["error"]
