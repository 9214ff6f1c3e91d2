"""Every app as an MCP server: published through Dify's console paths, reached with the `mcp` SDK's client over
the streamable-HTTP transport, one app of every mode, with Dify's input schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from pydantic import SecretStr

from openify.app import create_app
from openify.services.container import Services
from openify.settings import Settings
from tests.api import chatkit
from tests.api.test_openai_face import CHATFLOW, WORKFLOW
from tests.conftest import AppKit, free_port, import_app
from tests.fake_llm.server import FakeLLM

ADMIN = "admin-token-0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "providers.yaml").write_text(chatkit.providers_yaml(fake_llm), encoding="utf-8")
    return Settings(_env_file=None, data_dir=data, database_url=database_url, admin_token=SecretStr(ADMIN))  # type: ignore[call-arg]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _publish(base_url: str, kit: AppKit, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        r = await http.post(f"/console/api/apps/{kit.app_id}/server", json=body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out


async def _tools_and_call(url: str, arguments: dict[str, Any], **headers: str) -> tuple[list[Any], str]:
    async with streamablehttp_client(url, headers=headers or None) as (read, write, _), ClientSession(read, write) as s:
        await s.initialize()
        tools = (await s.list_tools()).tools
        result = await s.call_tool(tools[0].name, arguments)
        assert not result.isError, result.content
        text = result.content[0]
        assert text.type == "text"
        return tools, text.text


async def test_every_mode_answers_through_the_sdk_client(base_url: str, services: Services, fake_llm: FakeLLM) -> None:
    form = [
        {"text-input": {"variable": "topic", "label": "Topic", "required": True}},
        {"select": {"variable": "tone", "label": "Tone", "required": False, "options": ["dry", "warm"]}},
        {"number": {"variable": "n", "label": "N", "required": False}},
        {"file": {"variable": "doc", "label": "Doc", "required": False}},
    ]
    chat = import_app(services, chatkit.chat_dsl("chat", user_input_form=form, pre_prompt="About {{topic}}"))
    server = await _publish(base_url, chat, description="问答 tool", parameters={"topic": "the subject"})
    assert server["status"] == "active" and len(server["server_code"]) == 16
    url = f"{base_url}/mcp/server/{server['server_code']}/mcp"
    tools, answer = await _tools_and_call(url, {"query": "你好", "topic": "易经"})
    assert answer == "echo: 你好"
    assert tools[0].name == "t-chat" and tools[0].description == "问答 tool"
    assert tools[0].inputSchema == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "User Input/Question content"},
            "topic": {"description": "the subject", "type": "string"},
            "tone": {"description": "", "type": "string", "enum": ["dry", "warm"]},
            "n": {"description": "", "type": "number"},
        },
        "required": ["query", "topic"],
    }

    agent = import_app(
        services,
        chatkit.chat_dsl("agent-chat", agent_mode={"enabled": True, "strategy": "function_call", "tools": []}),
    )
    fake_llm.reply("final answer only")
    code = (await _publish(base_url, agent))["server_code"]
    assert (await _tools_and_call(f"{base_url}/mcp/server/{code}/mcp", {"query": "hi"}))[1] == "final answer only"

    completion_form = [{"paragraph": {"variable": "text", "label": "Text", "required": True}}]
    completion = import_app(services, chatkit.chat_dsl("completion", user_input_form=completion_form))
    code = (await _publish(base_url, completion))["server_code"]
    tools, answer = await _tools_and_call(f"{base_url}/mcp/server/{code}/mcp", {"text": "写诗"})
    assert "query" not in tools[0].inputSchema["properties"] and answer.startswith("echo: ")

    workflow = import_app(services, WORKFLOW)
    code = (await _publish(base_url, workflow))["server_code"]
    tools, answer = await _tools_and_call(f"{base_url}/mcp/server/{code}/mcp", {"q": "abc"})
    assert tools[0].inputSchema["required"] == ["q"] and answer == '{"out": "上: ABC"}'

    chatflow = import_app(services, CHATFLOW)
    code = (await _publish(base_url, chatflow))["server_code"]
    assert (await _tools_and_call(f"{base_url}/mcp/server/{code}/mcp", {"query": "一"}))[1] == "一 #1"


async def test_codes_status_refresh_and_bearer(base_url: str, services: Services) -> None:
    kit = import_app(services, chatkit.chat_dsl("chat"))
    server = await _publish(base_url, kit)
    old = f"{base_url}/mcp/server/{server['server_code']}/mcp"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=base_url, headers=admin) as http:
        assert (await http.get(f"/console/api/apps/{kit.app_id}/server")).json()["id"] == server["id"]
        assert (await http.post(f"/console/api/apps/{kit.app_id}/server", json={})).status_code == 400
        assert (await http.put(f"/console/api/apps/{kit.app_id}/server", json={"status": "odd"})).status_code == 400
        # An app key of this app as the bearer works; another app's key does not.
        other = import_app(services, chatkit.chat_dsl("chat"))
        assert (await _tools_and_call(old, {"query": "x"}, Authorization=f"Bearer {kit.key}"))[1] == "echo: x"
        init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        accept = {"Accept": "application/json, text/event-stream"}
        r = await http.post(old, json=init, headers={**accept, "Authorization": f"Bearer {other.key}"})
        assert r.status_code == 401
        refreshed = (await http.get(f"/console/api/apps/{kit.app_id}/server/refresh")).json()
        assert refreshed["server_code"] != server["server_code"]
        assert (await http.post(old, json=init, headers=accept)).status_code == 404
        new = f"{base_url}/mcp/server/{refreshed['server_code']}/mcp"
        put = await http.put(f"/console/api/apps/{kit.app_id}/server", json={"status": "inactive"})
        assert put.json()["status"] == "inactive"
        assert (await http.post(new, json=init, headers=accept)).status_code == 404
        assert (await http.get("/console/api/apps/unknown/server")).status_code == 404
