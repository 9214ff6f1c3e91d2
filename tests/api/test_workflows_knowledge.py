"""The knowledge-retrieval node through the API reads the knowledge bases of the dataset API."""

from __future__ import annotations

import httpx

from openify.services.container import Services
from tests.api.knowledge import add_text, create_dataset
from tests.api.workflow_kit import dsl, end, start, text_input
from tests.conftest import import_app

H = dict[str, str]


def _retrieval(dataset_id: str) -> str:
    return dsl(
        [
            start(text_input("query")),
            {
                "id": "kr",
                "type": "knowledge-retrieval",
                "dataset_ids": [dataset_id],
                "query_variable_selector": ["start", "query"],
                "retrieval_mode": "multiple",
                "multiple_retrieval_config": {"top_k": 1, "reranking_enable": False},
            },
            end(result=["kr", "result"]),
        ],
        [("start", "kr"), ("kr", "end")],
    )


async def test_knowledge_retrieval_node_finds_the_document(
    client: httpx.AsyncClient, services: Services, dataset_key: H
) -> None:
    ds = (await create_dataset(client, dataset_key, "kb", indexing_technique="economy"))["id"]
    await add_text(
        client, dataset_key, ds, "cats", "The cat sat on the warm mat and purred.", indexing_technique="economy"
    )
    await add_text(
        client, dataset_key, ds, "rain", "Heavy rain is expected in the mountains.", indexing_technique="economy"
    )
    kit = import_app(services, _retrieval(ds))
    r = await client.post(
        "/v1/workflows/run", headers=kit.auth, json={"inputs": {"query": "warm mat cat"}, "user": "u"}
    )
    data = r.json()["data"]
    assert data["status"] == "succeeded", data
    (hit,) = data["outputs"]["result"]
    assert "cat sat on the warm mat" in hit["content"]
    assert hit["metadata"]["dataset_id"] == ds
