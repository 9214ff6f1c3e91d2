"""The HTTP node through the API uses the SSRF-guarded client and the http_node settings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from openify.app import create_app
from openify.settings import HttpNodeSettings, Settings
from tests.api.workflow_kit import dsl, end, start
from tests.conftest import import_app
from tests.fake_llm.server import FakeLLM


def _call(url: str) -> str:
    return dsl(
        [
            start(),
            {
                "id": "call",
                "type": "http-request",
                "method": "get",
                "url": url,
                "headers": "",
                "params": "",
                "authorization": {"type": "no-auth"},
                "body": {"type": "none", "data": []},
                "timeout": {"connect": 5, "read": 5, "write": 5},
            },
            end(status=["call", "status_code"]),
        ],
        [("start", "call"), ("call", "end")],
    )


@pytest.mark.parametrize("allowed", [False, True], ids=["default", "allow-listed"])
async def test_http_node_refuses_loopback_unless_allowed(
    tmp_path: Path, database_url: str, fake_llm: FakeLLM, allowed: bool
) -> None:
    http_node = HttpNodeSettings(allow_hosts=["127.0.0.1"] if allowed else [])
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url, http_node=http_node)  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        kit = import_app(app.state.services, _call(f"{fake_llm.base_url}/models"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1"})
    data = r.json()["data"]
    if allowed:
        assert data["status"] == "succeeded", data
        assert data["outputs"] == {"status": 200}
    else:
        assert data["status"] == "failed"
        assert data["error"] == "Access to private or loopback address 127.0.0.1 is not allowed"
