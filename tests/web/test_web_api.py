"""Sites, passports and the web API (`/web-api`), in process over the ASGI app with real databases."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from openify.services.container import Services
from tests.api.chatkit import AppKit, chat_dsl, import_app, sse_events
from tests.fake_llm.server import FakeLLM


def _enable(services: Services, app_id: str, **changes: Any) -> str:
    site, _ = services.sites.configure(app_id, True, **changes)
    return site.code


async def _visitor(client: httpx.AsyncClient, code: str) -> dict[str, str]:
    r = await client.get("/web-api/passport", headers={"X-App-Code": code})
    assert r.status_code == 200, r.text
    return {"X-App-Code": code, "Authorization": f"Bearer {r.json()['access_token']}"}


async def test_a_site_is_found_by_its_code_only_when_enabled(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, chat_dsl())
    site, _ = services.sites.configure(kit.app_id)  # created, still disabled
    assert len(site.code) == 16 and site.code.isalnum()
    assert (await client.get("/web-api/passport", headers={"X-App-Code": site.code})).status_code == 404
    assert (await client.get(f"/chat/{site.code}")).status_code == 404
    code = _enable(services, kit.app_id, title="周易助手", copyright="Openify")
    assert code == site.code  # the code stays
    headers = await _visitor(client, code)
    body = (await client.get("/web-api/site", headers=headers)).json()
    assert body["site"]["title"] == "周易助手" and body["site"]["copyright"] == "Openify"
    page = await client.get(f"/chat/{code}")
    assert page.status_code == 200 and "chat.js" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # scripts fall back to 'self' only
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert (await client.get(f"/workflow/{code}")).status_code == 404  # a chat app has no workflow page
    services.sites.configure(kit.app_id, False)
    assert (await client.get("/web-api/site", headers=headers)).status_code == 404


async def test_passports_are_signed_and_scoped_to_their_site(client: httpx.AsyncClient, services: Services) -> None:
    a = _enable(services, import_app(services, chat_dsl()).app_id)
    b = _enable(services, import_app(services, chat_dsl()).app_id)
    headers = await _visitor(client, a)
    assert (await client.get("/web-api/parameters", headers=headers)).status_code == 200
    r = await client.get("/web-api/parameters", headers={**headers, "X-App-Code": b})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    token = headers["Authorization"].removeprefix("Bearer ")
    payload, _, sign = token.partition(".")
    forged = {**headers, "Authorization": f"Bearer {payload}.{sign[:-2]}AA"}
    assert (await client.get("/web-api/parameters", headers=forged)).status_code == 401
    assert (await client.get("/web-api/parameters", headers={"X-App-Code": a})).status_code == 401
    # an app API key is not a passport
    kit = import_app(services, chat_dsl())
    r = await client.get("/web-api/parameters", headers={"X-App-Code": a, "Authorization": f"Bearer {kit.key}"})
    assert r.status_code == 401


async def test_a_visitor_chats_and_sees_only_their_own_conversations(
    client: httpx.AsyncClient, services: Services, chat: AppKit, fake_llm: FakeLLM
) -> None:
    code = _enable(services, chat.app_id)
    me, other = await _visitor(client, code), await _visitor(client, code)
    fake_llm.reply("你好，我是助手。", "Greeting")
    r = await client.post(
        "/web-api/chat-messages",
        headers=me,
        json={"query": "你好", "inputs": {}, "response_mode": "streaming", "user": "someone-else"},
    )
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    assert "".join(e.get("answer", "") for e in events if e["event"] == "message") == "你好，我是助手。"
    end = next(e for e in events if e["event"] == "message_end")
    conv, msg = end["conversation_id"], end["message_id"]
    mine = (await client.get("/web-api/conversations", headers=me)).json()["data"]
    assert [c["id"] for c in mine] == [conv]
    assert (await client.get("/web-api/conversations", headers=other)).json()["data"] == []
    # the body's `user` was replaced by the visitor's: "someone-else" has nothing
    assert services.chat.find_end_user_id(chat.app_id, "someone-else") is None
    msgs = (await client.get("/web-api/messages", headers=me, params={"conversation_id": conv})).json()["data"]
    assert [m["answer"] for m in msgs] == ["你好，我是助手。"]
    assert (await client.get("/web-api/messages", headers=other, params={"conversation_id": conv})).status_code == 404
    r = await client.post(f"/web-api/messages/{msg}/feedbacks", headers=me, json={"rating": "like"})
    assert r.json() == {"result": "success"}
    dislike = await client.post(f"/web-api/messages/{msg}/feedbacks", headers=other, json={"rating": "dislike"})
    assert dislike.status_code == 404
    r = await client.post(f"/web-api/conversations/{conv}/name", headers=me, json={"name": "我的对话"})
    assert r.json()["name"] == "我的对话"
    assert (await client.delete(f"/web-api/conversations/{conv}", headers=other)).status_code == 404
    assert (await client.delete(f"/web-api/conversations/{conv}", headers=me)).json() == {"result": "success"}
    assert (await client.get("/web-api/conversations", headers=me)).json()["data"] == []


async def test_bad_bodies_get_dify_errors(client: httpx.AsyncClient, services: Services, chat: AppKit) -> None:
    headers = await _visitor(client, _enable(services, chat.app_id))
    r = await client.post("/web-api/chat-messages", headers=headers, json={"inputs": {}, "response_mode": "streaming"})
    assert r.status_code == 400 and {"code", "message", "status"} <= set(r.json())


async def test_each_visitor_is_rate_limited(client: httpx.AsyncClient, services: Services, chat: AppKit) -> None:
    code = _enable(services, chat.app_id)
    services.visitor_limit.limit = 3
    me, other = await _visitor(client, code), await _visitor(client, code)
    statuses = [(await client.get("/web-api/site", headers=me)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert (await client.get("/web-api/site", headers=other)).status_code == 200


async def test_the_console_api_enables_and_configures_a_site(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, chat_dsl())
    url = f"/console/api/apps/{kit.app_id}/site"
    services.settings.admin_token = SecretStr("admin-secret")
    admin = {"Authorization": "Bearer admin-secret"}
    assert (await client.post(url, json={"enable_site": True})).status_code == 401
    r = await client.post(url, headers=admin, json={"enable_site": True, "title": "问答", "chat_color_theme": "#0a7"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["url"] == f"/chat/{body['code']}" and body["enable_site"] is True and body["title"] == "问答"
    bad = await client.post(url, headers=admin, json={"chat_color_theme": "red; x"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_param"
    assert (await client.post(url, headers=admin, json={"nonsense": 1})).status_code == 400
    missing = await client.post("/console/api/apps/nope/site", headers=admin, json={})
    assert missing.status_code == 404
    headers = await _visitor(client, body["code"])
    site = (await client.get("/web-api/site", headers=headers)).json()["site"]
    assert site["title"] == "问答" and site["chat_color_theme"] == "#0a7"


async def test_suggested_follow_ups_reach_the_visitor(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = import_app(services, chat_dsl(suggested_questions_after_answer={"enabled": True}))
    me = await _visitor(client, _enable(services, kit.app_id))
    fake_llm.reply("答案", "Name", '["下一个问题？", "Another?"]')
    r = await client.post(
        "/web-api/chat-messages", headers=me, json={"query": "q", "inputs": {}, "response_mode": "streaming"}
    )
    msg = next(e for e in sse_events(r.text) if e["event"] == "message_end")["message_id"]
    r = await client.get(f"/web-api/messages/{msg}/suggested", headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == ["下一个问题？", "Another?"]


async def test_the_service_apis_site_reports_the_web_pages_settings(
    client: httpx.AsyncClient, services: Services, chat: AppKit
) -> None:
    before = (await client.get("/v1/site", headers=chat.auth)).json()
    assert before["copyright"] is None  # no site yet: the app's own defaults
    _enable(services, chat.app_id, title="周易小站", copyright="© 2026 Openify", show_workflow_steps=False)
    site = (await client.get("/v1/site", headers=chat.auth)).json()
    assert (site["title"], site["copyright"], site["show_workflow_steps"]) == ("周易小站", "© 2026 Openify", False)
