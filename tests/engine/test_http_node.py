"""The HTTP node through the real SSRF-guarded client, against a server on loopback (allow-listed)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openify.engine.events import NodeRetry
from openify.engine.ports import Ports
from openify.security.ssrf import GuardedHttpClient
from openify.settings import HttpNodeSettings
from tests.engine.conftest import DirFiles, file_value, load_dsl, run_dsl


class _Server:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if server.fail_next:
                    server.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    got = json.loads(body or b"null")
                except ValueError:
                    got = body.decode("latin-1")
                payload = json.dumps({"got": got, "path": self.path}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _dsl(base: str) -> dict[str, Any]:
    dsl = load_dsl("http.yml")
    dsl["workflow"]["environment_variables"][0]["value"] = base
    return dsl


async def test_request_fields_are_rendered_and_sent(server: _Server) -> None:
    ports = Ports(http=GuardedHttpClient(HttpNodeSettings(allow_hosts=["127.0.0.1"])))
    out = await run_dsl(_dsl(server.url), {"who": "ann"}, ports=ports)
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs["status"] == 201
    assert json.loads(out.outputs["body"]) == {"got": {"name": "ann", "n": 1}, "path": "/echo/ann?q=ann&q=again"}
    assert out.outputs["ctype"] == "application/json"
    headers = server.received[0]["headers"]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["X-Who"] == "ann" and headers["X-Two"] == "a:b"
    assert headers["Content-Type"] == "application/json"
    logged = out.nodes["call"].process_data["request"]["headers"]
    assert "s3cret" not in json.dumps(logged) and logged["Authorization"].startswith("Bearer")


async def test_5xx_is_retried_when_retry_is_enabled(server: _Server) -> None:
    server.fail_next = 2
    ports = Ports(http=GuardedHttpClient(HttpNodeSettings(allow_hosts=["127.0.0.1"])))
    out = await run_dsl(_dsl(server.url), {"who": "bo"}, ports=ports)
    assert out.outputs["status"] == 201
    assert [r.error for r in out.of(NodeRetry)] == ["Request failed with status code 503"] * 2


async def test_loopback_is_refused_without_allow_list(server: _Server) -> None:
    ports = Ports(http=GuardedHttpClient(HttpNodeSettings()))
    out = await run_dsl(_dsl(server.url), {"who": "eve"}, ports=ports)
    assert out.finished.status == "failed"
    assert out.nodes["call"].status == "failed"
    assert server.received == []


@pytest.mark.parametrize(
    ("body", "auth", "content_type", "authorization", "sent"),
    [
        (
            {
                "type": "x-www-form-urlencoded",
                "data": [
                    {"key": "a", "type": "text", "value": "{{#start.who#}}"},
                    {"key": "b", "type": "text", "value": "2"},
                ],
            },
            {"type": "api-key", "config": {"type": "basic", "api_key": "u:p"}},
            "application/x-www-form-urlencoded",
            "Basic dTpw",
            "a=zed&b=2",
        ),
        (
            {"type": "raw-text", "data": [{"key": "", "type": "text", "value": "hi {{#start.who#}}"}]},
            {"type": "api-key", "config": {"type": "custom", "header": "X-Key", "api_key": "k1"}},
            "text/plain",
            None,
            "hi zed",
        ),
        (
            {
                "type": "form-data",
                "data": [
                    {"key": "f", "type": "file", "file": ["start", "doc"]},
                    {"key": "t", "type": "text", "value": "v"},
                ],
            },
            {"type": "no-auth"},
            "multipart/form-data",
            None,
            "file body",
        ),
        ("raw old-style body", {"type": "no-auth"}, None, None, None),
    ],
)
async def test_body_types_and_auth(
    server: _Server,
    tmp_path: Path,
    body: Any,
    auth: Any,
    content_type: str | None,
    authorization: str | None,
    sent: str | None,
) -> None:
    (tmp_path / "doc.txt").write_text("file body")
    dsl = _dsl(server.url)
    data = dsl["workflow"]["graph"]["nodes"][1]["data"]
    data.update(body=body, authorization=auth, headers="")
    dsl["workflow"]["graph"]["nodes"][0]["data"]["variables"].append(
        {"variable": "doc", "label": "Doc", "type": "file", "required": False}
    )
    ports = Ports(http=GuardedHttpClient(HttpNodeSettings(allow_hosts=["127.0.0.1"])), files=DirFiles(tmp_path))
    out = await run_dsl(dsl, {"who": "zed", "doc": file_value("doc.txt")}, ports=ports)
    assert out.finished.status == "succeeded", out.finished.error
    got = server.received[-1]
    if content_type:
        assert got["headers"]["Content-Type"].startswith(content_type)
    assert got["headers"].get("Authorization") == authorization
    if auth.get("config", {}).get("header") == "X-Key":
        assert got["headers"]["X-Key"] == "k1"
    if sent:
        assert sent in got["body"].decode()
