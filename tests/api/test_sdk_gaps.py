"""What Dify's current Python SDK (`sdks/python-client`, on httpx) sends: unset query parameters as empty
values, and `/hit-testing` beside `/retrieve`."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api import chatkit
from tests.api.chatkit import blocking
from tests.api.knowledge import add_text, create_dataset
from tests.conftest import AppKit

settings, chat = chatkit.settings, chatkit.chat  # fixtures: every model provider is the stand-in


async def test_unset_query_parameters_mean_not_given(
    client: httpx.AsyncClient, chat: AppKit, dataset_key: dict[str, str]
) -> None:
    r = await blocking(client, chat, query="hi", user="u1", auto_generate_name=False)
    conversation = r.json()["conversation_id"]
    # httpx writes None as an empty value: `?user=u1&last_id=&limit=&pinned=` (the SDK's get_conversations)
    r = await client.get(
        "/v1/conversations", headers=chat.auth, params={"user": "u1", "last_id": None, "limit": None, "pinned": None}
    )
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["data"]] == [conversation] and r.json()["limit"] == 20
    q = {"user": "u1", "conversation_id": conversation, "first_id": None, "limit": None}
    r = await client.get("/v1/messages", headers=chat.auth, params=q)
    assert r.status_code == 200 and len(r.json()["data"]) == 1, r.text
    ds = (await create_dataset(client, dataset_key, "sdk"))["id"]
    await add_text(client, dataset_key, ds, "a", "some text")
    r = await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key, params={"keyword": None, "page": None})
    assert r.status_code == 200 and r.json()["total"] == 1, r.text
    r = await client.get("/v1/datasets", headers=dataset_key, params={"page": "", "limit": "", "keyword": ""})
    assert r.status_code == 200 and r.json()["page"] == 1, r.text


def _without_hit_count(answer: dict[str, Any]) -> dict[str, Any]:
    for record in answer["records"]:
        record["segment"].pop("hit_count"), record["segment"].pop("updated_at")
    return answer


async def test_hit_testing_answers_as_retrieve(client: httpx.AsyncClient, dataset_key: dict[str, str]) -> None:
    ds = (await create_dataset(client, dataset_key, "hits"))["id"]
    await add_text(client, dataset_key, ds, "cats", "The cat sat on the warm mat.")
    await add_text(client, dataset_key, ds, "fish", "猫喜欢吃鱼。")
    body = {"query": "cat mat"}
    hit = await client.post(f"/v1/datasets/{ds}/hit-testing", headers=dataset_key, json=body)
    retrieved = await client.post(f"/v1/datasets/{ds}/retrieve", headers=dataset_key, json=body)
    assert hit.status_code == retrieved.status_code == 200, hit.text
    assert _without_hit_count(hit.json()) == _without_hit_count(
        retrieved.json()
    )  # each search counts a hit, and stamps it
    assert [r["segment"]["document"]["name"] for r in hit.json()["records"]] == ["cats"]
