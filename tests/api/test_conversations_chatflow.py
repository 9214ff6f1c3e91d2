"""Conversation endpoints on chatflow (advanced-chat) conversations: variables, suggested questions, delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from openify.services.container import Services
from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.conftest import DSL_DIR, import_app
from tests.fake_llm.server import FakeLLM

F15 = DSL_DIR / "15-chatflow-0.2.0-artifact.yml"
F20 = DSL_DIR / "20-chatflow-0.5.0-conversation-var-v1-overwrite.yml"


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM) -> Settings:
    providers = {
        "default": "fake",
        "providers": {"fake": {"base_url": fake_llm.base_url, "api_key": "sk-test", "max_retries": 0}},
    }
    (settings.data_dir).mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    return settings


async def _chat(client: httpx.AsyncClient, auth: dict[str, str], query: str, **extra: Any) -> dict[str, Any]:
    body = {
        "inputs": {},
        "query": query,
        "user": "u1",
        "response_mode": "blocking",
        "auto_generate_name": False,
        **extra,
    }
    r = await client.post("/v1/chat-messages", headers=auth, json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_update_a_conversation_variable(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, F20)
    conv = (await _chat(client, kit.auth, "first"))["conversation_id"]
    url = f"/v1/conversations/{conv}/variables"
    (var,) = (await client.get(url, headers=kit.auth, params={"user": "u1"})).json()["data"]
    assert set(var) == {"id", "name", "value_type", "value", "description", "created_at", "updated_at"}
    r = await client.put(f"{url}/{var['id']}", headers=kit.auth, json={"value": "changed", "user": "u1"})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == "changed" and r.json()["id"] == var["id"]
    r = await client.put(f"{url}/{var['id']}", headers=kit.auth, json={"value": 3, "user": "u1"})
    assert_dify_error(r, 400, "bad_request")  # a string variable takes strings only
    r = await client.get(url, headers=kit.auth, params={"user": "u1", "variable_name": "conv_var"})
    assert [v["value"] for v in r.json()["data"]] == ["changed"]
    r = await client.get(url, headers=kit.auth, params={"user": "someone-else"})
    assert_dify_error(r, 404, "not_found")
    r = await client.request("DELETE", f"/v1/conversations/{conv}", headers=kit.auth, json={"user": "u1"})
    assert r.status_code == 204
    assert_dify_error(await client.get(url, headers=kit.auth, params={"user": "u1"}), 404, "not_found")


async def test_suggested_questions_of_a_chatflow_use_its_llm_node(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    doc = yaml.safe_load(F15.read_text(encoding="utf-8"))
    doc["workflow"]["features"]["suggested_questions_after_answer"] = {"enabled": True}
    kit = import_app(services, yaml.safe_dump(doc, allow_unicode=True))
    fake_llm.reply("a page")
    mid = (await _chat(client, kit.auth, "make a page"))["message_id"]
    fake_llm.reply('["Add a title?", "Change colours?", "Add a form?"]')
    r = await client.get(f"/v1/messages/{mid}/suggested", headers=kit.auth, params={"user": "u1"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == ["Add a title?", "Change colours?", "Add a form?"]
    assert "make a page" in fake_llm.received[-1]["messages"][-1]["content"]
