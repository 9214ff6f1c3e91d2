"""POST /datasets/{id}/retrieve: keyword for economy; semantic, full-text and hybrid (weights or a rerank
model) for high_quality; top_k, score_threshold, metadata filters; and bad input."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.api.knowledge import add_text, create_dataset, retrieve
from tests.conftest import settings_with_providers, stand_in_provider
from tests.fake_llm.server import FakeLLM

H = dict[str, str]
DOCS = {
    "cats": "The cat sat on the warm mat and purred all afternoon.",
    "markets": "Stock markets fell sharply today as investors sold shares.",
    "fish": "猫喜欢吃鱼，也喜欢在阳光下睡觉。",
    "rain": "Heavy rain is expected in the mountains this weekend.",
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    entry = stand_in_provider(fake_llm.base_url, **{"rerank-1": {"model_type": "rerank"}})
    return settings_with_providers(tmp_path, database_url, {"reranker": entry})


async def _kb(client: httpx.AsyncClient, h: H, technique: str) -> tuple[str, dict[str, str]]:
    ds = (await create_dataset(client, h, f"kb-{technique}", indexing_technique=technique))["id"]
    ids = {}
    for name, text in DOCS.items():
        ids[name] = (await add_text(client, h, ds, name, text, indexing_technique=technique))["document"]["id"]
    return ds, ids


def _docs(records: list[dict[str, Any]]) -> list[str]:
    return [r["segment"]["document"]["name"] for r in records]


async def test_economy_searches_keywords(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds, _ = await _kb(client, dataset_key, "economy")
    records = await retrieve(client, dataset_key, ds, "stock markets")
    assert _docs(records) == ["markets"] and records[0]["score"] == pytest.approx(1.0)
    seg = records[0]["segment"]
    assert seg["content"] == DOCS["markets"] and seg["document"]["data_source_type"] == "upload_file"
    assert set(records[0]) >= {"segment", "child_chunks", "score", "tsne_position", "files", "summary"}
    assert _docs(await retrieve(client, dataset_key, ds, "猫 鱼"))[0] == "fish"  # jieba tokens
    # economy ignores a semantic method: a word that is not in any text finds nothing
    assert (
        await retrieve(
            client,
            dataset_key,
            ds,
            "kitten",
            search_method="semantic_search",
            top_k=3,
            reranking_enable=False,
            score_threshold_enabled=False,
        )
        == []
    )
    # hit counts are stored
    r = await client.get(f"/v1/datasets/{ds}/documents/{seg['document_id']}/segments/{seg['id']}", headers=dataset_key)
    assert r.json()["data"]["hit_count"] == 1


async def test_high_quality_search_methods(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds, _ = await _kb(client, dataset_key, "high_quality")
    semantic = await retrieve(
        client,
        dataset_key,
        ds,
        "kitten resting",
        search_method="semantic_search",
        top_k=2,
        reranking_enable=False,
        score_threshold_enabled=False,
    )
    # No shared word: only vectors find the two texts about cats, the English and the Chinese one.
    assert set(_docs(semantic)) == {"cats", "fish"}
    assert semantic[0]["score"] > semantic[1]["score"]
    assert (
        await retrieve(
            client,
            dataset_key,
            ds,
            "kitten resting",
            search_method="full_text_search",
            top_k=2,
            reranking_enable=False,
            score_threshold_enabled=False,
        )
        == []
    )
    full = await retrieve(
        client,
        dataset_key,
        ds,
        "investors shares",
        search_method="full_text_search",
        top_k=4,
        reranking_enable=False,
        score_threshold_enabled=False,
    )
    assert _docs(full) == ["markets"]
    hybrid = await retrieve(
        client,
        dataset_key,
        ds,
        "cat mat",
        search_method="hybrid_search",
        top_k=4,
        reranking_enable=False,
        score_threshold_enabled=False,
        reranking_mode="weighted_score",
        weights={
            "weight_type": "customized",
            "vector_setting": {"vector_weight": 0.5},
            "keyword_setting": {"keyword_weight": 0.5},
        },
    )
    assert _docs(hybrid)[0] == "cats" and len(hybrid) == 4
    assert 0 < hybrid[0]["score"] <= 1 and [r["score"] for r in hybrid] == sorted(
        (r["score"] for r in hybrid), reverse=True
    )
    top1 = await retrieve(
        client,
        dataset_key,
        ds,
        "weather rain",
        search_method="semantic_search",
        top_k=1,
        reranking_enable=False,
        score_threshold_enabled=False,
    )
    assert _docs(top1) == ["rain"]
    strict = await retrieve(
        client,
        dataset_key,
        ds,
        "weather rain",
        search_method="semantic_search",
        top_k=4,
        reranking_enable=False,
        score_threshold_enabled=True,
        score_threshold=0.99,
    )
    assert strict == []
    loose = await retrieve(
        client,
        dataset_key,
        ds,
        "weather rain",
        search_method="semantic_search",
        top_k=4,
        reranking_enable=False,
        score_threshold_enabled=True,
        score_threshold=0.0,
    )
    assert len(loose) == 4
    # the dataset's own retrieval model applies when the request has none
    r = await client.patch(
        f"/v1/datasets/{ds}",
        headers=dataset_key,
        json={
            "retrieval_model": {
                "search_method": "full_text_search",
                "top_k": 1,
                "reranking_enable": False,
                "score_threshold_enabled": False,
            }
        },
    )
    assert r.status_code == 200, r.text
    assert await retrieve(client, dataset_key, ds, "kitten resting") == []


async def test_rerank_model(client: httpx.AsyncClient, dataset_key: H, fake_llm: FakeLLM) -> None:
    ds, _ = await _kb(client, dataset_key, "high_quality")
    records = await retrieve(
        client,
        dataset_key,
        ds,
        "heavy rain weekend",
        search_method="hybrid_search",
        top_k=2,
        reranking_enable=True,
        reranking_mode="reranking_model",
        score_threshold_enabled=False,
        reranking_model={"reranking_provider_name": "reranker", "reranking_model_name": "rerank-1"},
    )
    assert _docs(records)[0] == "rain" and len(records) <= 2
    assert any(str(req.get("query")) == "heavy rain weekend" for req in fake_llm.received)
    r = await client.post(
        f"/v1/datasets/{ds}/retrieve",
        headers=dataset_key,
        json={
            "query": "x",
            "retrieval_model": {
                "search_method": "semantic_search",
                "top_k": 2,
                "reranking_enable": True,
                "score_threshold_enabled": False,
                "reranking_model": {"reranking_provider_name": "nobody", "reranking_model_name": "r"},
            },
        },
    )
    assert_dify_error(r, 400, "provider_not_initialize")


async def test_metadata_filtering(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds, ids = await _kb(client, dataset_key, "economy")
    r = await client.post(f"/v1/datasets/{ds}/metadata", headers=dataset_key, json={"type": "string", "name": "lang"})
    assert r.status_code == 201, r.text
    lang = r.json()["id"]
    r = await client.post(f"/v1/datasets/{ds}/metadata", headers=dataset_key, json={"type": "number", "name": "year"})
    year = r.json()["id"]
    ops = [
        {
            "document_id": ids[n],
            "metadata_list": [{"id": lang, "name": "lang", "value": v}, {"id": year, "name": "year", "value": y}],
        }
        for n, v, y in (("cats", "en", 2020), ("fish", "zh", 2024), ("markets", "en", 2024))
    ]
    r = await client.post(f"/v1/datasets/{ds}/documents/metadata", headers=dataset_key, json={"operation_data": ops})
    assert r.json() == {"result": "success"}

    def flt(*conditions: dict[str, Any], op: str = "and") -> dict[str, Any]:
        return {
            "search_method": "keyword_search",
            "top_k": 4,
            "reranking_enable": False,
            "score_threshold_enabled": False,
            "metadata_filtering_conditions": {"logical_operator": op, "conditions": list(conditions)},
        }

    query = {"query": "cat 猫 stock rain"}
    url = f"/v1/datasets/{ds}/retrieve"
    got = (
        await client.post(
            url,
            headers=dataset_key,
            json={**query, "retrieval_model": flt({"name": "lang", "comparison_operator": "is", "value": "en"})},
        )
    ).json()["records"]
    assert sorted(_docs(got)) == ["cats", "markets"]
    got = (
        await client.post(
            url,
            headers=dataset_key,
            json={
                **query,
                "retrieval_model": flt(
                    {"name": "lang", "comparison_operator": "is", "value": "en"},
                    {"name": "year", "comparison_operator": "≥", "value": 2023},
                ),
            },
        )
    ).json()["records"]
    assert _docs(got) == ["markets"]
    got = (
        await client.post(
            url,
            headers=dataset_key,
            json={
                **query,
                "retrieval_model": flt(
                    {"name": "lang", "comparison_operator": "is", "value": "zh"},
                    {"name": "year", "comparison_operator": "<", "value": 2021},
                    op="or",
                ),
            },
        )
    ).json()["records"]
    assert sorted(_docs(got)) == ["cats", "fish"]
    assert got[0]["segment"]["document"]["doc_metadata"]
    got = (
        await client.post(
            url,
            headers=dataset_key,
            json={**query, "retrieval_model": flt({"name": "lang", "comparison_operator": "empty"})},
        )
    ).json()["records"]
    assert _docs(got) == ["rain"]
    # built-in fields, once enabled
    assert (await client.post(f"/v1/datasets/{ds}/metadata/built-in/enable", headers=dataset_key)).json() == {
        "result": "success"
    }
    got = (
        await client.post(
            url,
            headers=dataset_key,
            json={
                **query,
                "retrieval_model": flt({"name": "document_name", "comparison_operator": "start with", "value": "ra"}),
            },
        )
    ).json()["records"]
    assert _docs(got) == ["rain"]
    r = await client.post(
        url,
        headers=dataset_key,
        json={**query, "retrieval_model": flt({"name": "lang", "comparison_operator": "resembles", "value": "x"})},
    )
    assert_dify_error(r, 400, "invalid_param")


async def test_bad_input_and_not_initialized(client: httpx.AsyncClient, dataset_key: H) -> None:
    empty = (await create_dataset(client, dataset_key, "empty"))["id"]
    r = await client.post(f"/v1/datasets/{empty}/retrieve", headers=dataset_key, json={"query": "x"})
    assert_dify_error(r, 400, "dataset_not_initialized")
    ds, _ = await _kb(client, dataset_key, "economy")
    url = f"/v1/datasets/{ds}/retrieve"
    for body in (
        {},
        {"query": ""},
        {"query": "x" * 251},
        {"query": 3},
        {"query": "x", "retrieval_model": "fast"},
        {"query": "x", "retrieval_model": {"search_method": "telepathy"}},
        {"query": "x", "retrieval_model": {"top_k": 0}},
        {"query": "x", "retrieval_model": {"top_k": "3"}},
        {"query": "x", "retrieval_model": {"score_threshold_enabled": True, "score_threshold": 2}},
        {"query": "x", "retrieval_model": {"reranking_enable": True, "reranking_mode": "reranking_model"}},
        {"query": "x", "retrieval_model": {"weights": {"vector_setting": {"vector_weight": "a"}}}},
    ):
        assert_dify_error(await client.post(url, headers=dataset_key, json=body), 400, "invalid_param")
    r = await client.post(f"/v1/datasets/{uuid.uuid4()}/retrieve", headers=dataset_key, json={"query": "x"})
    assert_dify_error(r, 404, "not_found")
    assert_dify_error(await client.post(url, json={"query": "x"}), 401, "unauthorized")
