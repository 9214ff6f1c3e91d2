"""Plugins inside apps and apps inside plugins, over the Service API: a workflow's tool node runs the installed
json_process plugin; a plugin invokes a workflow app back through the host; a plugin's file upload URL takes a
file and its preview link serves it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI

from openify.app import create_app
from openify.services.container import Services
from openify.services.tool_host import PluginToolHost
from openify.settings import Settings
from openify.tools.base import JsonMessage, ToolCall, ToolRef
from openify.tools.dify_plugins.installer import InstalledPlugin
from tests.conftest import import_app
from tests.engine.test_tool_node import workflow
from tests.tools.dify_plugins.conftest import adopt

# Real plugin processes (and, for the first test of a session, installing them) on a shared 2-core machine.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def server(
    tmp_path: Path, database_url: str, installed_plugins: dict[str, InstalledPlugin]
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", database_url=database_url, files_url="http://testserver"
    )
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        adopt(services, installed_plugins["json_process"], installed_plugins["everything"])
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            yield services, client


async def test_a_workflow_tool_node_runs_the_plugin_and_a_plugin_runs_the_workflow(
    server: tuple[Services, httpx.AsyncClient],
) -> None:
    services, client = server
    tool = {
        "provider_id": "langgenius/json_process/json_process",
        "provider_type": "plugin",
        "provider_name": "langgenius/json_process/json_process",
        "tool_name": "parse",
        "tool_configurations": {},
        "tool_parameters": {
            "content": {"type": "mixed", "value": "{{#start.q#}}"},
            "json_filter": {"type": "constant", "value": "城市"},
            "ensure_ascii": {"type": "constant", "value": False},
        },
    }
    kit = import_app(services, yaml.safe_dump(workflow(tool), allow_unicode=True))
    body = {
        "inputs": {"q": json.dumps({"城市": "北京"}, ensure_ascii=False)},
        "user": "u1",
        "response_mode": "blocking",
    }
    r = await client.post("/v1/workflows/run", headers=kit.auth, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "succeeded", r.json()
    assert r.json()["data"]["outputs"]["text"] == "北京"

    # The same app, invoked by a plugin (the SDK's session.app.workflow.invoke) through the host.
    probe = ToolRef("plugin", "openify-tests/everything/everything", "probe")
    args = {"app_id": kit.app_id, "inputs": body["inputs"]}
    params = {"action": "app", "args": json.dumps(args, ensure_ascii=False)}
    [message] = [m async for m in services.tools.call(probe, params, ToolCall(user_id="u1"))]
    assert isinstance(message, JsonMessage)
    assert message.data["data"]["status"] == "succeeded" and message.data["data"]["outputs"]["text"] == "北京"


async def test_plugin_upload_url_takes_a_file_that_its_link_serves(server: tuple[Services, httpx.AsyncClient]) -> None:
    services, client = server
    url = PluginToolHost(services).tool_file_upload_url("a1b2c3")  # what a plugin's upload_file call gets
    assert url.startswith("http://testserver/files/dify-plugins/upload/a1b2c3?")
    content = "报告：42".encode()
    r = await client.post(url, files={"file": ("报告.txt", content, "text/plain")})
    assert r.status_code == 201, r.text
    uploaded = r.json()
    assert uploaded["name"] == "报告.txt" and uploaded["size"] == len(content) and uploaded["extension"] == "txt"
    got = await client.get(uploaded["preview_url"])
    assert got.status_code == 200 and got.content == content

    forged = url.replace("a1b2c3", "d4e5f6", 1)  # the signature is over the upload id
    r = await client.post(forged, files={"file": ("x.txt", b"x", "text/plain")})
    assert r.status_code == 403, r.text
