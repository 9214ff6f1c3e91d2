"""Bad input on every parameter of /chat-messages and its stop: always a Dify error, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api import chatkit
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures
GOOD: dict[str, Any] = {"inputs": {}, "query": "hi", "user": "u1", "response_mode": "blocking"}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"query": None}, 400, "invalid_param"),
        ({"query": ""}, 400, "invalid_param"),
        ({"query": "   "}, 400, "invalid_param"),
        ({"query": ["a"]}, 400, "invalid_param"),
        ({"inputs": None}, 400, "invalid_param"),
        ({"inputs": "x"}, 400, "invalid_param"),
        ({"user": None}, 400, "invalid_param"),
        ({"user": ""}, 400, "invalid_param"),
        ({"user": {"id": 1}}, 400, "invalid_param"),
        ({"response_mode": "fast"}, 400, "invalid_param"),
        ({"conversation_id": "not-a-uuid"}, 400, "invalid_param"),
        ({"conversation_id": "00000000-0000-0000-0000-000000000000"}, 404, "not_found"),
        ({"files": {"type": "image"}}, 400, "invalid_param"),
        ({"files": [{"transfer_method": "remote_url", "url": "https://x/y.png"}]}, 400, "invalid_param"),
        ({"auto_generate_name": "maybe"}, 400, "invalid_param"),
    ],
)
async def test_bad_chat_body(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM, change: dict[str, Any], status: int, code: str
) -> None:
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await client.post("/v1/chat-messages", headers=chat.auth, json=body)
    assert_dify_error(r, status, code)
    assert fake_llm.received == []


async def test_missing_fields_are_named(client: httpx.AsyncClient, chat: AppKit) -> None:
    for field in ("query", "inputs", "user"):
        body = {k: v for k, v in GOOD.items() if k != field}
        err = assert_dify_error(
            await client.post("/v1/chat-messages", headers=chat.auth, json=body), 400, "invalid_param"
        )
        assert field in str(err["message"])


async def test_not_json_and_bad_json(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await client.post(
        "/v1/chat-messages", headers={**chat.auth, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert_dify_error(r, 400, "bad_request")
    r = await client.post("/v1/chat-messages", headers=chat.auth, content=b"[]")
    assert r.status_code == 400 and r.json()["status"] == 400


async def test_numeric_user_is_accepted_as_text(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await client.post(
        "/v1/chat-messages", headers=chat.auth, json={**GOOD, "user": 42, "auto_generate_name": False}
    )
    assert r.status_code == 200, r.text
    r = await client.get("/v1/conversations", headers=chat.auth, params={"user": "42"})
    assert len(r.json()["data"]) == 1


async def test_unknown_provider_is_provider_not_initialize(
    client: httpx.AsyncClient, services: chatkit.Services
) -> None:
    (services.settings.data_dir / "providers.yaml").unlink()
    services.models.reload()  # no providers configured now
    kit = chatkit.import_app(services, chatkit.CHAT_DSL)
    r = await client.post("/v1/chat-messages", headers=kit.auth, json=GOOD)
    assert_dify_error(r, 400, "provider_not_initialize")


@pytest.mark.parametrize("body", [{}, {"user": ""}, {"user": None}, {"user": []}])
async def test_bad_stop_body(client: httpx.AsyncClient, chat: AppKit, body: dict[str, Any]) -> None:
    r = await client.post("/v1/chat-messages/some-task/stop", headers=chat.auth, json=body)
    assert_dify_error(r, 400, "invalid_param")


async def test_stop_of_an_unknown_or_finished_task_is_success(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await client.post("/v1/chat-messages", headers=chat.auth, json={**GOOD, "auto_generate_name": False})
    for task in (r.json()["task_id"], "nope"):
        r = await client.post(f"/v1/chat-messages/{task}/stop", headers=chat.auth, json={"user": "u1"})
        assert r.status_code == 200 and r.json() == {"result": "success"}


async def test_stop_on_a_completion_app_is_not_chat_app(client: httpx.AsyncClient, services: chatkit.Services) -> None:
    kit = chatkit.import_app(services, chatkit.COMPLETION_DSL)
    r = await client.post("/v1/chat-messages/t/stop", headers=kit.auth, json={"user": "u1"})
    assert_dify_error(r, 400, "not_chat_app")


async def test_bad_key_and_no_key(client: httpx.AsyncClient, chat: AppKit) -> None:
    assert_dify_error(await client.post("/v1/chat-messages", json=GOOD), 401, "unauthorized")
    r = await client.post("/v1/chat-messages", headers={"Authorization": "Bearer app-nope"}, json=GOOD)
    assert_dify_error(r, 401, "unauthorized")
