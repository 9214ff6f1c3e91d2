"""`openify app mcp APP_ID`: publish an app as an MCP server from the command line, show, refresh, disable it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openify.cli import main
from openify.plugins import build_registries
from openify.services.container import Services
from openify.settings import Settings
from tests.conftest import DSL_DIR, import_app


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
