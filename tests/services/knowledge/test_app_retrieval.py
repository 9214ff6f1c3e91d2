"""`retrieve_for_app` (dataset_configs of chat/completion/agent apps) and `retrieve_for_workflow`
(the knowledge-retrieval node): Dify's retriever_resources, single and multiple retrieval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from openify.services.container import Services
from openify.settings import Settings
from openify.storage.tables import App
from tests.api.knowledge import add_text, create_dataset
from tests.conftest import DSL_DIR, import_app, settings_with_providers, stand_in_provider
from tests.fake_llm.server import FakeLLM

H = dict[str, str]
RESOURCE_KEYS = {
    "position",
    "dataset_id",
    "dataset_name",
    "document_id",
    "document_name",
    "data_source_type",
    "segment_id",
    "retriever_from",
    "score",
    "hit_count",
    "word_count",
    "segment_position",
    "index_node_hash",
    "content",
    "page",
    "doc_metadata",
    "title",
    "files",
    "summary",
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    entry = stand_in_provider(fake_llm.base_url, **{"rerank-1": {"model_type": "rerank"}})
    return settings_with_providers(tmp_path, database_url, {"reranker": entry})


@pytest.fixture
def chat(services: Services) -> App:
    kit = import_app(services, DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml")
    return services.apps.get(kit.app_id)


async def _two_datasets(client: httpx.AsyncClient, h: H) -> tuple[str, str]:
    a = (await create_dataset(client, h, "animals", indexing_technique="economy"))["id"]
    b = (await create_dataset(client, h, "weather", indexing_technique="economy"))["id"]
    await add_text(client, h, a, "cats.txt", "Cats chase mice in the barn.")
    await add_text(client, h, a, "dogs.txt", "Dogs chase balls in the park.")
    await add_text(client, h, b, "rain.txt", "Rain falls on the park all week.")
    return a, b


def _configs(*ids: str, **extra: Any) -> dict[str, Any]:
    return {
        "datasets": {"strategy": "router", "datasets": [{"dataset": {"enabled": True, "id": i}} for i in ids]},
        **extra,
    }


async def test_multiple_retrieval_returns_numbered_resources(
    client: httpx.AsyncClient, dataset_key: H, services: Services, chat: App
) -> None:
    a, b = await _two_datasets(client, dataset_key)
    out = services.knowledge.retrieve_for_app(
        chat, "chase park", _configs(a, b, retrieval_model="multiple", top_k=3), "user-1"
    )
    assert [r["position"] for r in out] == [1, 2, 3]
    assert all(set(r) == RESOURCE_KEYS for r in out)
    assert {r["document_name"] for r in out} == {"cats.txt", "dogs.txt", "rain.txt"}
    assert out[0]["document_name"] == "dogs.txt"  # both words
    assert out[0]["dataset_name"] == "animals" and out[0]["retriever_from"] == "api"
    assert out[0]["content"] == "Dogs chase balls in the park." and out[0]["title"] == "dogs.txt"
    assert out[0]["score"] >= out[1]["score"] >= out[2]["score"]
    # top_k and the threshold apply across datasets
    assert (
        len(
            services.knowledge.retrieve_for_app(
                chat, "chase park", _configs(a, b, retrieval_model="multiple", top_k=1), None
            )
        )
        == 1
    )
    strict = services.knowledge.retrieve_for_app(
        chat,
        "chase park",
        _configs(a, b, retrieval_model="multiple", top_k=3, score_threshold_enabled=True, score_threshold=0.99),
        None,
    )
    # keyword scores are relative to each dataset's best hit: the weaker match in `animals` is cut
    assert sorted(r["document_name"] for r in strict) == ["dogs.txt", "rain.txt"]
    # a disabled dataset entry is skipped; no datasets, no query: nothing
    off = _configs(a, b, retrieval_model="multiple")
    off["datasets"]["datasets"][0]["dataset"]["enabled"] = False
    assert {r["dataset_id"] for r in services.knowledge.retrieve_for_app(chat, "chase park", off, None)} == {b}
    assert services.knowledge.retrieve_for_app(chat, "chase park", None, None) == []
    assert services.knowledge.retrieve_for_app(chat, "  ", _configs(a, b), None) == []


async def test_multiple_retrieval_with_a_rerank_model(
    client: httpx.AsyncClient, dataset_key: H, services: Services, chat: App, fake_llm: FakeLLM
) -> None:
    a, b = await _two_datasets(client, dataset_key)
    configs = _configs(
        a,
        b,
        retrieval_model="multiple",
        top_k=2,
        reranking_enable=True,
        reranking_mode="reranking_model",
        reranking_model={"reranking_provider_name": "reranker", "reranking_model_name": "rerank-1"},
    )
    out = services.knowledge.retrieve_for_app(chat, "rain falls on the park", configs, None)
    assert out[0]["document_name"] == "rain.txt" and len(out) <= 2
    assert any(req.get("query") == "rain falls on the park" for req in fake_llm.received)


async def test_single_retrieval_uses_one_dataset(
    client: httpx.AsyncClient, dataset_key: H, services: Services, chat: App
) -> None:
    a, b = await _two_datasets(client, dataset_key)
    # without an LLM, the dataset whose name is nearest the query: "weather" for rain
    out = services.knowledge.retrieve_for_app(chat, "rain in the park", _configs(a, b, retrieval_model="single"), None)
    assert out and {r["dataset_id"] for r in out} == {b}
    out = services.knowledge.retrieve_for_app(
        chat, "pets: cats and dogs", _configs(a, b, retrieval_model="single"), None
    )
    assert {r["dataset_id"] for r in out} == {a}
    # with the app's LLM as chooser it gets one tool per dataset, as Dify's router does
    offered: list[list[str]] = []

    def choose(tools: list[Any], query: str) -> str | None:
        offered.append([t.name for t in tools])
        return a if "chase" in query else None

    out = services.knowledge.retrieve_for_app(
        chat, "chase park", _configs(a, b, retrieval_model="single"), None, choose_dataset=choose
    )
    assert {r["dataset_id"] for r in out} == {a} and offered == [[a, b]]
    assert (
        services.knowledge.retrieve_for_app(
            chat, "rain", _configs(a, b, retrieval_model="single"), None, choose_dataset=choose
        )
        == []
    )  # the LLM picked none


async def test_metadata_filter_and_disabled_documents(
    client: httpx.AsyncClient, dataset_key: H, services: Services, chat: App
) -> None:
    a, b = await _two_datasets(client, dataset_key)
    await client.post(f"/v1/datasets/{a}/metadata/built-in/enable", headers=dataset_key)
    configs = _configs(
        a,
        b,
        retrieval_model="multiple",
        top_k=5,
        metadata_filtering_mode="manual",
        metadata_filtering_conditions={
            "logical_operator": "and",
            "conditions": [{"name": "document_name", "comparison_operator": "is", "value": "cats.txt"}],
        },
    )
    out = services.knowledge.retrieve_for_app(chat, "chase park", configs, None)
    assert [r["document_name"] for r in out] == ["cats.txt"]
    assert out[0]["doc_metadata"]["document_name"] == "cats.txt"
    docs = (await client.get(f"/v1/datasets/{a}/documents", headers=dataset_key)).json()["data"]
    cats = next(d["id"] for d in docs if d["name"] == "cats.txt")
    await client.patch(f"/v1/datasets/{a}/documents/status/disable", headers=dataset_key, json={"document_ids": [cats]})
    assert services.knowledge.retrieve_for_app(chat, "chase park", configs, None) == []


async def test_retrieve_for_workflow(client: httpx.AsyncClient, dataset_key: H, services: Services) -> None:
    a, b = await _two_datasets(client, dataset_key)
    config = {"retrieval_mode": "multiple", "multiple_retrieval_config": {"top_k": 2, "reranking_enable": False}}
    out = services.knowledge.retrieve_for_workflow([a, b], "chase park", config)
    assert len(out) == 2 and out[0]["content"] == "Dogs chase balls in the park." and out[0]["title"] == "dogs.txt"
    meta = out[0]["metadata"]
    assert meta["_source"] == "knowledge" and meta["retriever_from"] == "workflow" and meta["position"] == 1
    assert meta["dataset_name"] == "animals" and meta["document_name"] == "dogs.txt" and meta["segment_id"]
    empty = (await create_dataset(client, dataset_key, "empty", indexing_technique="economy"))["id"]
    assert services.knowledge.retrieve_for_workflow([empty], "chase", config) == []  # no available document


def test_citations_keep_one_resource_per_document() -> None:
    from openify.services.knowledge import citations

    resources = [
        {"position": 1, "dataset_id": "a", "document_id": "d1", "segment_id": "s1"},
        {"position": 2, "dataset_id": "a", "document_id": "d1", "segment_id": "s2"},
        {"position": 3, "dataset_id": "b", "document_id": "d2", "segment_id": "s3"},
    ]
    assert [(c["position"], c["segment_id"]) for c in citations(resources)] == [(1, "s1"), (2, "s3")]
