"""Chat apps with knowledge bases: retrieved passages go into the prompt and come back as retriever_resources."""

from __future__ import annotations

import httpx

from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import blocking, streaming
from tests.api.knowledge import add_text, create_dataset
from tests.conftest import import_app
from tests.fake_llm.server import FakeLLM

settings = chatkit.settings  # fixture

DOCS = {
    "markets": "Stock markets fell sharply today as investors sold shares.",
    "rain": "Heavy rain is expected in the mountains this weekend.",
}


async def _app_with_kb(client: httpx.AsyncClient, services: Services, dataset_key: dict[str, str]) -> chatkit.AppKit:
    ds = (await create_dataset(client, dataset_key, "kb", indexing_technique="economy"))["id"]
    for name, text in DOCS.items():
        await add_text(client, dataset_key, ds, name, text)
    configs = {
        "retrieval_model": "multiple",
        "top_k": 2,
        "datasets": {"datasets": [{"dataset": {"enabled": True, "id": ds}}]},
    }
    return import_app(services, chatkit.chat_dsl(dataset_configs=configs, retriever_resource={"enabled": True}))


async def test_retrieved_context_reaches_the_prompt_and_the_answer_cites_it(
    client: httpx.AsyncClient, services: Services, dataset_key: dict[str, str], fake_llm: FakeLLM
) -> None:
    kit = await _app_with_kb(client, services, dataset_key)
    fake_llm.reply("Markets fell.")
    r = await blocking(client, kit, query="what happened to stock markets?", auto_generate_name=False)
    assert r.status_code == 200, r.text
    system = fake_llm.received[-1]["messages"][0]
    assert system["role"] == "system" and "<context>" in system["content"]
    assert DOCS["markets"] in system["content"]
    resources = r.json()["metadata"]["retriever_resources"]
    assert resources and resources[0]["document_name"] == "markets" and resources[0]["position"] == 1
    assert resources[0]["content"] == DOCS["markets"]
    assert {"dataset_id", "dataset_name", "document_id", "segment_id", "score"} <= set(resources[0])

    q = {"conversation_id": r.json()["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=kit.auth, params=q)).json()["data"][0]
    assert stored["retriever_resources"][0]["message_id"] == stored["id"]
    assert stored["retriever_resources"][0]["document_name"] == "markets"


async def test_streaming_message_end_carries_the_resources(
    client: httpx.AsyncClient, services: Services, dataset_key: dict[str, str]
) -> None:
    kit = await _app_with_kb(client, services, dataset_key)
    events = await streaming(client, kit, query="rain in the mountains", auto_generate_name=False)
    end = events[-1]
    assert end["event"] == "message_end"
    assert end["metadata"]["retriever_resources"][0]["document_name"] == "rain"
