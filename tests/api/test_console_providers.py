"""Model providers configured through the console API: written to providers.yaml, live at once, never shown."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from fastapi import FastAPI
from pydantic import SecretStr

from openify.app import create_app
from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.conftest import DSL_DIR
from tests.fake_llm.server import FakeLLM

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "sk-console-secret-5f2a9c"


@pytest.fixture
async def admin_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"admin_token": SecretStr(TOKEN)}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin(admin_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=admin_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as c:
        yield c


async def _chat(admin: httpx.AsyncClient, key: str, query: str) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": "u1", "response_mode": "blocking"}
    return await admin.post("/v1/chat-messages", headers={"Authorization": f"Bearer {key}"}, json=body)


async def test_configure_a_provider_and_chat_through_it(
    admin: httpx.AsyncClient, settings: Settings, fake_llm: FakeLLM
) -> None:
    text = (DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml").read_text()
    key = (await admin.post("/console/api/apps/imports", headers=AUTH, json={"yaml_content": text})).json()["api_key"]

    # The app names volcengine_maas, which nothing serves yet.
    assert_dify_error(await _chat(admin, key, "你好"), 400, "provider_not_initialize")

    entry = {"type": "openai_compatible", "base_url": fake_llm.base_url, "api_key": SECRET,
             "aliases": ["volcengine_maas"], "max_retries": 0}
    r = await admin.put("/console/api/providers/ark", headers=AUTH, json=entry)
    assert r.status_code == 200, r.text
    assert r.json()["api_key_set"] is True and SECRET not in r.text

    fake_llm.reply("卦象已成")
    r = await _chat(admin, key, "算一卦")
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "卦象已成"
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {SECRET}"

    listed = await admin.get("/console/api/providers", headers=AUTH)
    assert SECRET not in listed.text
    assert [p["name"] for p in listed.json()["data"]] == ["ark"]

    path = settings.providers_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["providers"]["ark"]["base_url"] == fake_llm.base_url

    # An update without api_key keeps the stored key.
    r = await admin.put("/console/api/providers/ark", headers=AUTH,
                        json={"base_url": fake_llm.base_url, "aliases": ["volcengine_maas"], "max_retries": 0})
    assert r.json()["api_key_set"] is True

    assert (await admin.delete("/console/api/providers/ark", headers=AUTH)).status_code == 204
    assert_dify_error(await _chat(admin, key, "再算"), 400, "provider_not_initialize")


async def test_invalid_provider_is_refused_and_changes_nothing(admin: httpx.AsyncClient, settings: Settings) -> None:
    r = await admin.put("/console/api/providers/bad", headers=AUTH, json={"type": "no-such-type"})
    body = assert_dify_error(r, 400, "invalid_param")
    assert "no-such-type" in str(body["message"])
    assert (await admin.get("/console/api/providers", headers=AUTH)).json()["data"] == []
    assert not settings.providers_file.exists()
    assert_dify_error(await admin.put("/console/api/providers-default", headers=AUTH, json={"default": "ghost"}),
                      400, "invalid_param")


async def test_providers_api_needs_the_admin_token(admin: httpx.AsyncClient) -> None:
    assert_dify_error(await admin.get("/console/api/providers"), 401, "unauthorized")
