"""Conversations: list with paging and sorting, rename (given or generated), automatic naming, delete, variables."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from openify.app import create_app
from openify.settings import Settings
from tests.api import chatkit
from tests.api.chatkit import blocking
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit, import_app
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures


async def _new(client: httpx.AsyncClient, kit: AppKit, query: str, user: str = "u1") -> str:
    r = await blocking(client, kit, query=query, user=user, auto_generate_name=False)
    assert r.status_code == 200, r.text
    return str(r.json()["conversation_id"])


async def _list(client: httpx.AsyncClient, kit: AppKit, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/conversations", headers=kit.auth, params={"user": "u1", **params})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_list_pages_newest_first_with_has_more(client: httpx.AsyncClient, chat: AppKit) -> None:
    ids = [await _new(client, chat, f"q{i}") for i in range(5)]
    page1 = await _list(client, chat, limit=2)
    assert page1["limit"] == 2 and page1["has_more"] is True
    assert [c["id"] for c in page1["data"]] == ids[::-1][:2]
    item = page1["data"][0]
    assert set(item) == {"id", "name", "inputs", "status", "introduction", "created_at", "updated_at"}
    assert item["status"] == "normal" and item["name"] == "q4"
    page2 = await _list(client, chat, limit=2, last_id=page1["data"][-1]["id"])
    page3 = await _list(client, chat, limit=2, last_id=page2["data"][-1]["id"])
    assert [c["id"] for c in page2["data"] + page3["data"]] == ids[::-1][2:]
    assert page2["has_more"] is True and page3["has_more"] is False
    asc = await _list(client, chat, sort_by="created_at", limit=100)
    assert [c["id"] for c in asc["data"]] == ids


async def test_a_new_message_moves_its_conversation_to_the_top(client: httpx.AsyncClient, chat: AppKit) -> None:
    old, new = await _new(client, chat, "old"), await _new(client, chat, "new")
    await blocking(client, chat, query="again", conversation_id=old)
    assert [c["id"] for c in (await _list(client, chat))["data"]] == [old, new]
    assert [c["id"] for c in (await _list(client, chat, sort_by="-created_at"))["data"]] == [new, old]


async def test_unknown_last_id_is_404(client: httpx.AsyncClient, chat: AppKit) -> None:
    await _new(client, chat, "x")
    r = await client.get(
        "/v1/conversations", headers=chat.auth, params={"user": "u1", "last_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert_dify_error(r, 404, "not_found")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"sort_by": "name"}])
async def test_bad_list_parameters(client: httpx.AsyncClient, chat: AppKit, params: dict[str, Any]) -> None:
    r = await client.get("/v1/conversations", headers=chat.auth, params={"user": "u1", **params})
    assert_dify_error(r, 400, "invalid_param")


async def test_rename(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid = await _new(client, chat, "hello")
    r = await client.post(f"/v1/conversations/{cid}/name", headers=chat.auth, json={"name": "My chat", "user": "u1"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "My chat" and r.json()["id"] == cid
    assert (await _list(client, chat))["data"][0]["name"] == "My chat"
    r = await client.post(f"/v1/conversations/{cid}/name", headers=chat.auth, json={"name": "  ", "user": "u1"})
    assert_dify_error(r, 400, "invalid_param")


async def test_rename_auto_generate_asks_the_model(client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM) -> None:
    cid = await _new(client, chat, "how do I bake bread")
    fake_llm.reply('{"Language Type": "English", "Your Reasoning": "-", "Your Output": "Baking bread"}')
    r = await client.post(
        f"/v1/conversations/{cid}/name", headers=chat.auth, json={"auto_generate": True, "user": "u1"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Baking bread"
    assert "how do I bake bread" in fake_llm.received[-1]["messages"][-1]["content"]


async def test_new_conversations_are_named_after_the_first_answer(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    fake_llm.reply("Sure.", '{"Your Output": "Fortune telling"}')
    r = await blocking(client, chat, query="please tell my fortune for the coming year")
    cid = r.json()["conversation_id"]
    for _ in range(100):
        names = {c["id"]: c["name"] for c in (await _list(client, chat))["data"]}
        if names[cid] == "Fortune telling":
            break
        await asyncio.sleep(0.05)
    assert names[cid] == "Fortune telling"


async def test_naming_falls_back_to_the_query_when_the_model_gives_no_title(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    fake_llm.reply("Sure.", "not json at all")
    query = "a long question about the meaning of hexagram number forty-two"
    cid = (await blocking(client, chat, query=query)).json()["conversation_id"]
    for _ in range(100):
        name = (await _list(client, chat))["data"][0]["name"]
        if name == query[:47] + "...":
            break
        await asyncio.sleep(0.05)
    assert name == query[:47] + "..."
    assert (await _list(client, chat))["data"][0]["id"] == cid


async def test_delete_is_204_and_removes_messages(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid = await _new(client, chat, "bye")
    r = await client.request("DELETE", f"/v1/conversations/{cid}", headers=chat.auth, json={"user": "u1"})
    assert r.status_code == 204 and r.content == b""
    assert (await _list(client, chat))["data"] == []
    r = await client.get("/v1/messages", headers=chat.auth, params={"conversation_id": cid, "user": "u1"})
    assert_dify_error(r, 404, "not_found")
    r = await client.request("DELETE", f"/v1/conversations/{cid}", headers=chat.auth, json={"user": "u1"})
    assert_dify_error(r, 404, "not_found")


async def test_delete_without_json_body_is_415(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid = await _new(client, chat, "bye")
    r = await client.delete(f"/v1/conversations/{cid}", headers=chat.auth)
    assert_dify_error(r, 415, "unsupported_media_type")


async def test_delete_with_a_bad_body_is_400_not_500(client: httpx.AsyncClient, chat: AppKit) -> None:
    """Found by the contract test: an empty `user` or malformed JSON in the hand-read body was a 500."""
    cid = await _new(client, chat, "bye")
    r = await client.request("DELETE", f"/v1/conversations/{cid}", headers=chat.auth, json={"user": ""})
    assert_dify_error(r, 400, "invalid_param")
    bad = {**chat.auth, "Content-Type": "application/json"}
    r = await client.request("DELETE", f"/v1/conversations/{cid}", headers=bad, content=b"{")
    assert_dify_error(r, 400, "bad_request")


async def test_delete_answers_200_when_configured(tmp_path: Path, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"delete_conversation_returns_200": True}))
    async with app.router.lifespan_context(app):
        kit = import_app(app.state.services, chatkit.CHAT_DSL)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            cid = await _new(c, kit, "bye")
            r = await c.request("DELETE", f"/v1/conversations/{cid}", headers=kit.auth, json={"user": "u1"})
    assert r.status_code == 200 and r.json() == {"result": "success"}


async def test_chat_conversations_have_no_variables(client: httpx.AsyncClient, chat: AppKit) -> None:
    cid = await _new(client, chat, "vars")
    r = await client.get(f"/v1/conversations/{cid}/variables", headers=chat.auth, params={"user": "u1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"limit": 20, "has_more": False, "data": []}
    r = await client.put(
        f"/v1/conversations/{cid}/variables/00000000-0000-0000-0000-000000000000",
        headers=chat.auth,
        json={"value": "x", "user": "u1"},
    )
    assert_dify_error(r, 404, "not_found")
    r = await client.get(
        f"/v1/conversations/{cid}/variables", headers=chat.auth, params={"user": "u1", "variable_name": "bad name!"}
    )
    assert_dify_error(r, 400, "invalid_param")
    r = await client.get(
        "/v1/conversations/00000000-0000-0000-0000-000000000000/variables", headers=chat.auth, params={"user": "u1"}
    )
    assert_dify_error(r, 404, "not_found")
