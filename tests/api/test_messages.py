"""GET /messages paging backwards, feedback, app feedbacks, suggested questions, isolation between users and apps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import blocking
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit, import_app
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures


async def _conversation(client: httpx.AsyncClient, kit: AppKit, turns: int, user: str = "u1") -> tuple[str, list[str]]:
    cid, ids = "", []
    for i in range(turns):
        r = await blocking(client, kit, query=f"q{i}", user=user, conversation_id=cid, auto_generate_name=False)
        assert r.status_code == 200, r.text
        cid = r.json()["conversation_id"]
        ids.append(r.json()["message_id"])
    return cid, ids


async def _messages(client: httpx.AsyncClient, kit: AppKit, **params: Any) -> httpx.Response:
    return await client.get("/v1/messages", headers=kit.auth, params={"user": "u1", **params})


async def test_pages_walk_backwards_and_are_chronological(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid, ids = await _conversation(client, chat, 5)
    page = (await _messages(client, chat, conversation_id=cid, limit=2)).json()
    assert [m["id"] for m in page["data"]] == ids[3:] and page["has_more"] is True and page["limit"] == 2
    page = (await _messages(client, chat, conversation_id=cid, limit=2, first_id=page["data"][0]["id"])).json()
    assert [m["id"] for m in page["data"]] == ids[1:3] and page["has_more"] is True
    page = (await _messages(client, chat, conversation_id=cid, limit=2, first_id=page["data"][0]["id"])).json()
    assert [m["id"] for m in page["data"]] == ids[:1] and page["has_more"] is False
    m = (await _messages(client, chat, conversation_id=cid, limit=1)).json()["data"][0]
    assert {
        "id",
        "conversation_id",
        "parent_message_id",
        "inputs",
        "query",
        "answer",
        "feedback",
        "retriever_resources",
        "agent_thoughts",
        "message_files",
        "status",
        "error",
        "created_at",
    } <= set(m)
    assert m["query"] == "q4" and m["answer"] == "echo: q4" and m["status"] == "normal" and m["feedback"] is None


async def test_empty_conversation_id_gives_an_empty_page(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await _messages(client, chat, conversation_id="")
    assert r.json() == {"limit": 20, "has_more": False, "data": []}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {}])
async def test_bad_paging_parameters(client: httpx.AsyncClient, chat: AppKit, params: dict[str, Any]) -> None:
    cid, _ = await _conversation(client, chat, 1)
    query = {"conversation_id": cid, **params} if params else {}
    assert_dify_error(await _messages(client, chat, **query), 400, "invalid_param")


async def test_unknown_first_id_and_conversation_are_404(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid, _ = await _conversation(client, chat, 1)
    zero = "00000000-0000-0000-0000-000000000000"
    assert_dify_error(await _messages(client, chat, conversation_id=cid, first_id=zero), 404, "not_found")
    assert_dify_error(await _messages(client, chat, conversation_id=zero), 404, "not_found")


async def test_feedback_like_overwrite_delete_and_app_list(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid, (mid,) = await _conversation(client, chat, 1)
    url = f"/v1/messages/{mid}/feedbacks"
    r = await client.post(url, headers=chat.auth, json={"rating": "like", "user": "u1", "content": "great"})
    assert r.status_code == 200 and r.json() == {"result": "success"}
    assert (await _messages(client, chat, conversation_id=cid)).json()["data"][0]["feedback"] == {"rating": "like"}
    await client.post(url, headers=chat.auth, json={"rating": "dislike", "user": "u1"})
    fb = (await client.get("/v1/app/feedbacks", headers=chat.auth)).json()["data"]
    assert len(fb) == 1 and fb[0]["rating"] == "dislike" and fb[0]["message_id"] == mid
    assert fb[0]["from_source"] == "user" and fb[0]["created_at"].endswith("Z")  # ISO-8601 here
    r = await client.post(url, headers=chat.auth, json={"rating": None, "user": "u1"})
    assert r.status_code == 200
    assert (await client.get("/v1/app/feedbacks", headers=chat.auth)).json()["data"] == []
    assert (await _messages(client, chat, conversation_id=cid)).json()["data"][0]["feedback"] is None


@pytest.mark.parametrize("body", [{"rating": "love", "user": "u1"}, {"rating": "like"}, {"rating": "like", "user": ""}])
async def test_bad_feedback(client: httpx.AsyncClient, chat: AppKit, body: dict[str, Any]) -> None:
    _, (mid,) = await _conversation(client, chat, 1)
    r = await client.post(f"/v1/messages/{mid}/feedbacks", headers=chat.auth, json=body)
    assert_dify_error(r, 400, "invalid_param")


async def test_suggested_questions_only_when_enabled(
    client: httpx.AsyncClient, chat: AppKit, services: Services, fake_llm: FakeLLM
) -> None:
    _, (mid,) = await _conversation(client, chat, 1)
    r = await client.get(f"/v1/messages/{mid}/suggested", headers=chat.auth, params={"user": "u1"})
    assert_dify_error(r, 400, "bad_request")
    kit = import_app(services, chatkit.chat_dsl(suggested_questions_after_answer={"enabled": True}))
    _, (mid,) = await _conversation(client, kit, 1)
    fake_llm.reply('["What next?", "Why?", "How?"]')
    r = await client.get(f"/v1/messages/{mid}/suggested", headers=kit.auth, params={"user": "u1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"result": "success", "data": ["What next?", "Why?", "How?"]}
    assert_dify_error(await client.get(f"/v1/messages/{mid}/suggested", headers=kit.auth), 400, "invalid_param")


async def test_users_never_see_each_others_conversations(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid, (mid,) = await _conversation(client, chat, 1, user="alice")
    auth = chat.auth
    assert (await client.get("/v1/conversations", headers=auth, params={"user": "bob"})).json()["data"] == []
    await _conversation(client, chat, 1, user="bob")  # bob exists now
    r = await client.get("/v1/messages", headers=auth, params={"conversation_id": cid, "user": "bob"})
    assert_dify_error(r, 404, "not_found")
    r = await blocking(client, chat, query="hijack", user="bob", conversation_id=cid)
    assert_dify_error(r, 404, "not_found")
    r = await client.post(f"/v1/conversations/{cid}/name", headers=auth, json={"name": "x", "user": "bob"})
    assert_dify_error(r, 404, "not_found")
    r = await client.request("DELETE", f"/v1/conversations/{cid}", headers=auth, json={"user": "bob"})
    assert_dify_error(r, 404, "not_found")
    r = await client.post(f"/v1/messages/{mid}/feedbacks", headers=auth, json={"rating": "like", "user": "bob"})
    assert_dify_error(r, 404, "not_found")
    alice = await client.get("/v1/conversations", headers=auth, params={"user": "alice"})
    assert [c["id"] for c in alice.json()["data"]] == [cid] and alice.json()["data"][0]["name"] == "q0"


async def test_apps_never_see_each_others_conversations(
    client: httpx.AsyncClient, chat: AppKit, services: Services
) -> None:
    other = import_app(services, chatkit.CHAT_DSL)
    cid, (mid,) = await _conversation(client, chat, 1)
    await _conversation(client, other, 1)
    r = await client.get("/v1/messages", headers=other.auth, params={"conversation_id": cid, "user": "u1"})
    assert_dify_error(r, 404, "not_found")
    assert cid not in [
        c["id"]
        for c in (await client.get("/v1/conversations", headers=other.auth, params={"user": "u1"})).json()["data"]
    ]
    r = await blocking(client, other, query="x", conversation_id=cid)
    assert_dify_error(r, 404, "not_found")
    r = await client.post(f"/v1/messages/{mid}/feedbacks", headers=other.auth, json={"rating": "like", "user": "u1"})
    assert_dify_error(r, 404, "not_found")
    assert (await client.get("/v1/app/feedbacks", headers=other.auth)).json()["data"] == []
