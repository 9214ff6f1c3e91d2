"""Tool and agent nodes through the HTTP API: Dify's node events with tool_info, text streamed as it comes,
agent_log frames, missing plugins failing the node by name, and import reporting them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from openify.app import create_app
from openify.services.container import Services
from openify.settings import Settings
from tests.api.workflow_kit import dsl, end, sse_events, start, text_input
from tests.conftest import DSL_DIR, import_app


def _tool(node_id: str, provider: str, tool: str, **params: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "tool",
        "provider_id": provider,
        "provider_type": "builtin",
        "provider_name": provider,
        "tool_name": tool,
        "tool_label": tool,
        "tool_node_version": "2",
        "tool_configurations": {},
        "tool_parameters": params,
    }


async def _run(client: httpx.AsyncClient, auth: dict[str, str], inputs: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"inputs": inputs, "user": "u1", "response_mode": "streaming"}
    r = await client.post("/v1/workflows/run", headers=auth, json=body)
    assert r.status_code == 200, r.text
    return sse_events(r.text)


async def test_tool_node_runs_a_builtin_tool_with_difys_events(client: httpx.AsyncClient, services: Services) -> None:
    app = dsl(
        [
            start(text_input("day")),
            _tool(
                "wd",
                "time",
                "weekday",
                year={"type": "constant", "value": 2024},
                month={"type": "mixed", "value": "{{#start.day#}}"},
                day={"type": "constant", "value": "1"},
            ),
            end(text=["wd", "text"], json=["wd", "json"]),
        ],
        [("start", "wd"), ("wd", "end")],
    )
    kit = import_app(services, app)
    events = await _run(client, kit.auth, {"day": "5"})
    finished = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "wd")
    assert finished["status"] == "succeeded" and finished["node_type"] == "tool"
    assert finished["execution_metadata"]["tool_info"] == {
        "provider_type": "builtin",
        "provider_id": "time",
        "plugin_unique_identifier": None,
    }
    assert finished["inputs"] == {"year": 2024, "month": "5", "day": "1"}
    assert finished["outputs"] == {"text": "May 1, 2024 is Wednesday.", "files": [], "json": [{"data": []}]}
    chunks = "".join(e["data"]["text"] for e in events if e["event"] == "text_chunk")
    assert chunks.startswith("May 1, 2024 is Wednesday.")  # the End node streams the tool's text first
    assert events[-1]["data"]["outputs"]["text"] == "May 1, 2024 is Wednesday."


async def test_a_missing_plugin_fails_the_node_naming_it(client: httpx.AsyncClient, services: Services) -> None:
    app = dsl(
        [
            start(text_input("q")),
            _tool("search", "tavily", "tavily_search", query={"type": "mixed", "value": "{{#start.q#}}"}),
            end(text=["search", "text"]),
        ],
        [("start", "search"), ("search", "end")],
    )
    kit = import_app(services, app)
    events = await _run(client, kit.auth, {"q": "天气"})
    finished = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "search")
    assert finished["status"] == "failed"
    assert "langgenius/tavily/tavily" in finished["error"]
    assert "openify plugin install langgenius/tavily" in finished["error"]
    assert events[-1]["event"] == "workflow_finished" and events[-1]["data"]["status"] == "failed"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test agent strategies enter through OPENIFY_PLUGINS, as any Openify plugin does."""
    return settings.model_copy(update={"plugins": ["tests.tools.echo_plugin"]})


async def test_agent_node_streams_agent_log_frames_in_difys_shape(
    client: httpx.AsyncClient, services: Services
) -> None:
    model = {"provider": "openai", "model": "gpt-4o", "mode": "chat", "completion_params": {}}
    tools = [{"enabled": True, "type": "builtin", "provider_name": "time", "tool_name": "weekday"}]
    agent = {
        "id": "agent",
        "type": "agent",
        "agent_strategy_provider_name": "langgenius/agent/agent",
        "agent_strategy_name": "echo",
        "agent_parameters": {
            "model": {"type": "constant", "value": model},
            "tools": {"type": "constant", "value": tools},
            "query": {"type": "mixed", "value": "{{#start.q#}}"},
        },
    }
    kit = import_app(
        services,
        dsl([start(text_input("q")), agent, end(text=["agent", "text"])], [("start", "agent"), ("agent", "end")]),
    )
    events = await _run(client, kit.auth, {"q": "你好"})
    logs = [e for e in events if e["event"] == "agent_log"]
    assert [list(e["data"]) for e in logs] == [
        ["node_execution_id", "id", "label", "parent_id", "error", "status", "data", "metadata", "node_id"]
    ] * 2
    node = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "agent")
    assert logs[0]["data"]["node_execution_id"] == node["id"] and logs[0]["data"]["node_id"] == "agent"
    assert [e["data"]["status"] for e in logs] == ["start", "success"]
    assert set(logs[0]) == {"event", "workflow_run_id", "task_id", "data"}
    assert node["status"] == "succeeded", node["error"]
    assert node["outputs"]["text"] == "answer to 你好"
    assert events[-1]["data"]["outputs"] == {"text": "answer to 你好"}


async def test_chatflow_streams_agent_log_and_the_agents_answer(client: httpx.AsyncClient, services: Services) -> None:
    agent = {
        "id": "agent",
        "type": "agent",
        "agent_strategy_provider_name": "langgenius/agent/agent",
        "agent_strategy_name": "echo",
        "agent_parameters": {"query": {"type": "mixed", "value": "{{#sys.query#}}"}},
    }
    answer = {"id": "answer", "type": "answer", "answer": "{{#agent.text#}}"}
    kit = import_app(
        services, dsl([start(), agent, answer], [("start", "agent"), ("agent", "answer")], mode="advanced-chat")
    )
    body = {"query": "早", "inputs": {}, "user": "u1", "response_mode": "streaming"}
    r = await client.post("/v1/chat-messages", headers=kit.auth, json=body)
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    logs = [e for e in events if e["event"] == "agent_log"]
    assert len(logs) == 2 and {"conversation_id", "message_id", "task_id", "workflow_run_id"} <= set(logs[0])
    assert "".join(e["answer"] for e in events if e["event"] == "message") == "answer to 早"
    assert events[-1]["event"] == "workflow_finished" and events[-2]["event"] == "message_end"


TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(settings.model_copy(update={"admin_token": SecretStr(TOKEN)}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_console_import_accepts_tool_apps_and_lists_missing_plugins(admin: httpx.AsyncClient) -> None:
    text = next(DSL_DIR.glob("16-*.yml")).read_text()
    r = await admin.post(
        "/console/api/apps/imports", headers={"Authorization": f"Bearer {TOKEN}"}, json={"yaml_content": text}
    )
    assert r.status_code == 200, r.text
    missing = {m["plugin"]: m for m in r.json()["missing_plugins"]}
    assert set(missing) == {"langgenius/agent", "langgenius/google"}
    assert missing["langgenius/agent"]["kind"] == "agent_strategy"
    assert missing["langgenius/agent"]["install"] == (
        "openify plugin install langgenius/agent:0.0.9@f16916b704a20067317dbe9030f62aa28f0832021a3ef6d4ce699504074c5e13"
    )
