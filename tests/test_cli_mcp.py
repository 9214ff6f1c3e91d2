"""`openify app mcp APP_ID`: publish an app as an MCP server from the command line, show, refresh, disable it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from openify.cli import main
from openify.plugins import build_registries
from openify.services.container import Services
from openify.settings import Settings
from tests.conftest import DSL_DIR, import_app
from tests.tools.test_mcp import _serve, _server


def test_app_mcp_enable_refresh_disable(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENIFY_DATABASE_URL", database_url)

    def cli(*args: str) -> tuple[int, Any]:
        code = main([*args, "--data-dir", str(tmp_path)])  # in-process; the command stops what it started
        out = capsys.readouterr()
        return code, json.loads(out.out) if out.out.strip() else out.err

    services = Services.build(Settings(_env_file=None, data_dir=tmp_path), build_registries(()))  # type: ignore[call-arg]
    services.start()
    try:
        app_id = import_app(services, DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml").app_id
    finally:
        services.stop()
    code, err = cli("app", "mcp", app_id)
    assert code == 1 and "--enable" in err
    _, enabled = cli("app", "mcp", app_id, "--enable", "--param", "q=问题")
    assert enabled["status"] == "active" and enabled["path"] == f"/mcp/server/{enabled['server_code']}/mcp"
    assert cli("app", "mcp", app_id) == (0, enabled)
    _, refreshed = cli("app", "mcp", app_id, "--refresh")
    assert refreshed["id"] == enabled["id"] and refreshed["server_code"] != enabled["server_code"]
    assert cli("app", "mcp", app_id, "--disable")[1]["status"] == "inactive"


async def test_tools_mcp_add_list_refresh_remove(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands against a real MCP server (FastMCP over streamable HTTP on loopback, allowed for the test)."""
    monkeypatch.setenv("OPENIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENIFY_HTTP_NODE__ALLOW_HOSTS", '["127.0.0.1"]')
    async for base in _serve(_server().streamable_http_app()):

        def cli(*args: str) -> tuple[int, list[Any] | str]:
            code = main([*args, "--data-dir", str(tmp_path)])  # in-process; the command stops what it started
            out = capsys.readouterr()
            return code, [json.loads(x) for x in out.out.splitlines()] if out.out.strip() else out.err

        url = f"{base}/mcp"
        code, added = await asyncio.to_thread(cli, "tools", "mcp", "add", "demo", url, "--header", "X-Key: s3cret")
        assert code == 0 and isinstance(added, list)
        assert added[0]["headers"] == {"X-Key": "******"} and len(added[0]["tools"]) == 3
        assert (await asyncio.to_thread(cli, "tools", "mcp", "list"))[1] == added
        assert (await asyncio.to_thread(cli, "tools", "mcp", "refresh", "demo"))[0] == 0
        assert (await asyncio.to_thread(cli, "tools", "mcp", "remove", "demo"))[0] == 0
        code, err = await asyncio.to_thread(cli, "tools", "mcp", "refresh", "demo")
        assert code == 1 and "not found" in str(err)
