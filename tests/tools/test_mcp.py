"""MCP tool providers: a real MCP server (the `mcp` SDK's FastMCP) on loopback, over streamable HTTP and SSE,
added by identifier, listed, called through the tool manager as tool nodes and agents call it, refreshed, removed."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp.server.fastmcp import FastMCP, Image
from pydantic import SecretStr
from starlette.applications import Starlette

from openify.errors import InvalidParam
from openify.services.container import Services
from openify.settings import HttpNodeSettings, Settings
from openify.tools.base import FileMessage, JsonMessage, TextMessage, ToolCall, ToolRef, VariableMessage
from openify.tools.mcp import McpConnector, McpToolSource, list_remote
from tests.conftest import free_port
from tests.fake_llm.server import FakeLLM

ADMIN = "admin-token-0123456789abcdef"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _server() -> FastMCP:
    server = FastMCP("demo")

    @server.tool(description="Add two numbers")
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    @server.tool(description="Greet someone")
    def greet(name: str) -> str:
        return f"你好, {name}"

    @server.tool(description="A one-pixel image")
    def pixel() -> Image:
        return Image(data=PNG, format="png")

    return server


async def _serve(app: Starlette) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def http_url() -> AsyncIterator[str]:
    async for base in _serve(_server().streamable_http_app()):
        yield f"{base}/mcp"


@pytest.fixture
async def sse_url() -> AsyncIterator[str]:
    async for base in _serve(_server().sse_app()):
        yield f"{base}/sse"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", database_url=database_url,
        http_node=HttpNodeSettings(allow_hosts=["127.0.0.1"]), admin_token=SecretStr(ADMIN),
    )  # fmt: skip


async def _call(services: Services, provider: str, tool: str, params: dict[str, Any]) -> list[Any]:
    ref = ToolRef("mcp", provider, tool)
    return [m async for m in services.tools.call(ref, params, ToolCall(user_id="u1"))]


async def test_streamable_http_provider(services: Services, http_url: str) -> None:
    source = services.tools.source("mcp")
    assert isinstance(source, McpToolSource)
    row = await source.add("demo", http_url, headers={"X-Test": "1"})
    assert sorted(t["name"] for t in row.tools) == ["add", "greet", "pixel"]
    provider = await source.find_provider("demo")
    assert provider is not None
    add = provider.find_tool("add")
    assert add is not None and add.llm_schema()["required"] == ["a", "b"]
    assert [(p.name, p.type, p.form) for p in add.parameters] == [("a", "number", "llm"), ("b", "number", "llm")]

    messages = await _call(services, "demo", "add", {"a": 2, "b": "3"})
    assert JsonMessage({"sum": 5}) in messages  # text that parses as JSON
    assert VariableMessage("sum", 5) in messages  # structuredContent
    assert TextMessage("你好, 世界") in await _call(services, "demo", "greet", {"name": "世界"})
    (image,) = [m for m in await _call(services, "demo", "pixel", {}) if isinstance(m, FileMessage)]
    assert image.mime_type == "image/png" and image.data == PNG

    assert (await source.refresh("demo")).identifier == "demo"
    source.remove("demo")
    assert await source.find_provider("demo") is None


async def test_sse_provider_and_refusals(services: Services, sse_url: str) -> None:
    source = services.tools.source("mcp")
    assert isinstance(source, McpToolSource)
    await source.add("sse-demo", sse_url)
    assert TextMessage("你好, x") in await _call(services, "sse-demo", "greet", {"name": "x"})
    with pytest.raises(InvalidParam):
        await source.add("sse-demo", sse_url)  # the identifier exists
    with pytest.raises(InvalidParam):
        await source.add("other", "file:///etc/passwd")


async def test_private_addresses_are_refused_without_the_allowance(tmp_path: Path, http_url: str) -> None:
    connector = McpConnector(Settings(_env_file=None, data_dir=tmp_path))  # type: ignore[call-arg]
    with pytest.raises(InvalidParam, match="not allowed"):
        await list_remote(connector, http_url, {}, 5)


async def test_console_api(client: httpx.AsyncClient, http_url: str) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    body = {"server_url": http_url, "server_identifier": "demo", "name": "演示", "headers": {"X-Key": "s3cret"}}
    added = await client.post("/console/api/workspaces/current/tool-provider/mcp", json=body, headers=auth)
    assert added.status_code == 201, added.text
    assert added.json()["headers"] == {"X-Key": "******"} and added.json()["name"] == "演示"
    listed = (await client.get("/console/api/workspaces/current/tools/mcp", headers=auth)).json()
    assert [p["server_identifier"] for p in listed] == ["demo"]
    refreshed = await client.get("/console/api/workspaces/current/tool-provider/mcp/update/demo", headers=auth)
    assert len(refreshed.json()["tools"]) == 3
    bad = await client.post(
        "/console/api/workspaces/current/tool-provider/mcp",
        json={**body, "server_identifier": "x", "server_url": "http://127.0.0.1:9/mcp"},
        headers=auth,
    )
    assert bad.status_code == 400 and "Cannot list" in bad.json()["message"]
    gone = await client.request(
        "DELETE", "/console/api/workspaces/current/tool-provider/mcp", json={"server_identifier": "demo"}, headers=auth
    )
    assert gone.json() == {"result": "success"}
    assert (
        await client.get("/console/api/workspaces/current/tool-provider/mcp/update/demo", headers=auth)
    ).status_code == 404


async def test_a_workflow_tool_node_calls_an_mcp_tool_by_server_identifier(
    client: httpx.AsyncClient, services: Services, http_url: str
) -> None:
    from tests.api.workflow_kit import dsl, end, start, text_input
    from tests.conftest import import_app

    source = services.tools.source("mcp")
    assert isinstance(source, McpToolSource)
    await source.add("demo", http_url)
    node = {
        "id": "add",
        "type": "tool",
        "provider_id": "demo",  # Dify's DSL names an MCP provider by its server_identifier
        "provider_type": "mcp",
        "provider_name": "demo",
        "tool_name": "add",
        "tool_label": "add",
        "tool_configurations": {},
        "tool_parameters": {"a": {"type": "mixed", "value": "{{#start.x#}}"}, "b": {"type": "constant", "value": 40}},
    }
    app = dsl(
        [start(text_input("x")), node, end(json=["add", "json"], total=["add", "sum"])],
        [("start", "add"), ("add", "end")],
    )
    kit = import_app(services, app)
    body = {"inputs": {"x": "2"}, "user": "u1", "response_mode": "blocking"}
    r = await client.post("/v1/workflows/run", headers=kit.auth, json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "succeeded", data
    assert data["outputs"] == {"json": [{"sum": 42}], "total": 42}


async def test_stdio_server_runs_confined(services: Services) -> None:
    source = services.tools.source("mcp")
    assert isinstance(source, McpToolSource)
    script = Path(__file__).with_name("mcp_stdio_server.py")
    row = await source.add("shouter", "", command=f"{sys.executable} {script}")
    assert [t["name"] for t in row.tools] == ["shout"]
    assert TextMessage("HI 你好!") in await _call(services, "shouter", "shout", {"text": "hi 你好"})
    with pytest.raises(InvalidParam, match="Cannot list"):
        await source.add("broken", "", command="/nonexistent/server")


async def test_import_reports_missing_mcp_servers_with_the_command(services: Services, http_url: str) -> None:
    from tests.conftest import DSL_DIR

    app, _ = services.apps.import_dsl((DSL_DIR / "23-agent-chat-0.3.1-pdf-translate-mcp-zh.yml").read_text("utf-8"))
    missing = [m for m in await services.tools.missing_for_app(app) if m.provider == "pdftranslate2-mcp-server"]
    assert missing and {m.install for m in missing} == {"openify tools mcp add pdftranslate2-mcp-server URL"}


async def test_an_agent_chat_app_calls_an_mcp_tool(
    tmp_path: Path, database_url: str, fake_llm: FakeLLM, http_url: str
) -> None:
    from openify.app import create_app
    from tests.api import chatkit
    from tests.conftest import import_app

    data = tmp_path / "agent"
    data.mkdir()
    (data / "providers.yaml").write_text(chatkit.providers_yaml(fake_llm), encoding="utf-8")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=data, database_url=database_url,
        http_node=HttpNodeSettings(allow_hosts=["127.0.0.1"]),
    )  # fmt: skip
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        services: Services = application.state.services
        source = services.tools.source("mcp")
        assert isinstance(source, McpToolSource)
        await source.add("demo", http_url)
        tool = {
            "enabled": True, "provider_type": "mcp", "provider_id": "demo", "provider_name": "demo",
            "tool_name": "add", "tool_label": "add", "tool_parameters": {"a": "", "b": ""},
        }  # fmt: skip
        mode = {"enabled": True, "strategy": "function_call", "max_iteration": 3, "tools": [tool]}
        kit = import_app(services, chatkit.chat_dsl("agent-chat", agent_mode=mode))
        fake_llm.reply_tool_call("add", {"a": 20, "b": 22})
        fake_llm.reply("the sum is 42")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            body = {"inputs": {}, "query": "add", "user": "u1", "response_mode": "streaming"}
            r = await http.post("/v1/chat-messages", headers=kit.auth, json=body)
    events = chatkit.sse_events(r.text)
    observations = [e.get("observation", "") for e in events if e.get("event") == "agent_thought"]
    assert {"add": '{"sum": 42}'} in [json.loads(o) for o in observations if o], observations
    assert fake_llm.received[0]["tools"][0]["function"]["name"] == "add"
