"""The README's quickstart over real HTTP: serve, import a chat app, call /v1/info with its key."""

from __future__ import annotations

import json

import httpx

from tests.conftest import DSL_DIR, LiveServer


def test_quickstart(live_server: LiveServer) -> None:
    r = live_server.cli("app", "import", str(DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml"))
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)["api_key"]

    for prefix in ("/v1", "/api"):
        info = httpx.get(f"{live_server.base_url}{prefix}/info", headers={"Authorization": f"Bearer {key}"})
        assert info.status_code == 200, info.text
        assert info.json()["name"] == "周易大师"

    wrong = httpx.get(f"{live_server.base_url}/v1/info", headers={"Authorization": "Bearer app-wrong"})
    assert wrong.status_code == 401
    assert wrong.json() == {"code": "unauthorized", "message": "Access token is invalid", "status": 401}
    assert httpx.get(f"{live_server.base_url}/docs").status_code == 200
