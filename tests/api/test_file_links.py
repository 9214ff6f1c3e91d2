"""Signed file links, as Dify makes them: workflow file outputs, message files and message_end files carry a
`url` that opens the file without an API key until it expires (security/file_links.py, api/routes/file_links.py)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from openify.app import create_app
from openify.security.file_links import FileLinks
from openify.services.container import Services
from openify.settings import HttpNodeSettings, Settings
from tests.api import chatkit
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import dsl, end, start
from tests.conftest import AppKit, import_app
from tests.fake_llm.server import FakeLLM

PNG = bytes.fromhex("89504e470d0a1a0a") + b"not really a picture"
ECHO_FILE = dsl(
    [start({"variable": "doc", "label": "doc", "type": "file", "required": True}), end(doc=["start", "doc"])],
    [("start", "end")],
)
settings, chat = chatkit.settings, chatkit.chat  # fixtures; the zhouyi chat app has image upload on


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _with(url: str, **params: str) -> str:
    parts = urlsplit(url)
    q = {**_query(url), **params}
    return f"{parts.path}?" + "&".join(f"{k}={v}" for k, v in q.items())


# --- the signer alone --------------------------------------------------------------------------------------------
def test_links_verify_only_their_own_file_and_expire() -> None:
    links = FileLinks(lambda: b"k" * 32, "https://files.example/", ttl_s=300)
    url = links.upload_file("f1", as_attachment=True)
    assert url.startswith("https://files.example/files/f1/file-preview?timestamp=")
    q = _query(url)
    assert q["as_attachment"] == "true" and len(q["nonce"]) == 32
    assert links.valid("f1", q["timestamp"], q["nonce"], q["sign"])
    assert not links.valid("f2", q["timestamp"], q["nonce"], q["sign"])  # another file
    assert not links.valid("f1", q["timestamp"], q["nonce"] + "0", q["sign"])  # another nonce
    assert not links.valid("f1", str(int(q["timestamp"]) + 1), q["nonce"], q["sign"])
    assert not links.valid("f1", "", q["nonce"], q["sign"]) and not links.valid("f1", "x1", q["nonce"], q["sign"])
    other_key = FileLinks(lambda: b"j" * 32)
    assert not other_key.valid("f1", q["timestamp"], q["nonce"], q["sign"])
    tool = links.tool_file("t1", ".png")
    assert tool.startswith("https://files.example/files/tools/t1.png?timestamp=")
    assert FileLinks(lambda: b"k" * 32).tool_file("t1", "").startswith("/files/tools/t1?")  # no base: relative
    expired = FileLinks(lambda: b"k" * 32, ttl_s=1)
    old = str(int(time.time()) - 2)
    assert not expired.valid("f1", old, "n", expired._sign("f1", old, "n"))
    assert expired.valid("f1", str(int(time.time())), "n", expired._sign("f1", str(int(time.time())), "n"))


def test_every_process_on_one_data_directory_signs_with_one_key(tmp_path: Path) -> None:
    from openify.services.signing_keys import signing_key
    from openify.storage.blobs import BlobStore

    first, second = BlobStore(tmp_path), BlobStore(tmp_path)
    key = signing_key(first, "file-links")
    assert len(key) == 32 and signing_key(second, "file-links") == key
    assert signing_key(second, "other") != key
    second.put_if_absent("keys/file-links.key", b"x" * 32)  # a later writer never replaces the first key
    assert signing_key(first, "file-links") == key


# --- workflow runs -------------------------------------------------------------------------------------------------
async def _upload(client: httpx.AsyncClient, kit: AppKit, name: str, data: bytes, mime: str, user: str = "u1") -> str:
    r = await client.post("/v1/files/upload", headers=kit.auth, files={"file": (name, data, mime)}, data={"user": user})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_workflow_file_output_links_to_the_upload(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO_FILE)
    file_id = await _upload(client, kit, "notes 笔记.txt", "你好, file".encode(), "text/plain")
    ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": file_id}
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"doc": ref}, "user": "u1"})
    data = r.json()["data"]
    assert data["status"] == "succeeded", data
    url = data["outputs"]["doc"]["url"]
    assert url.startswith(f"/files/{file_id}/file-preview?timestamp="), url  # relative: no OPENIFY_FILES_URL

    opened = await client.get(url)  # no API key
    assert opened.status_code == 200 and opened.content == "你好, file".encode()
    assert opened.headers["content-type"].startswith("text/plain")
    download = await client.get(_with(url, as_attachment="true"))
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''notes%20%E7%AC%94%E8%AE%B0.txt"

    # The stored run answers with the same link, as Dify stores its outputs.
    stored = (await client.get(f"/v1/workflows/run/{data['id']}", headers=kit.auth)).json()
    assert stored["outputs"]["doc"]["url"] == url

    q = _query(url)
    assert_dify_error(await client.get(_with(url, sign=q["sign"][:-4] + "AAA=")), 404, "not_found")
    other = str(uuid.uuid4())
    assert_dify_error(await client.get(_with(url.replace(file_id, other))), 404, "not_found")
    assert_dify_error(
        await client.get(f"/files/{file_id}/file-preview?timestamp={q['timestamp']}"), 400, "invalid_param"
    )
    assert_dify_error(await client.get("/files/not-a-uuid/file-preview?timestamp=1&nonce=n&sign=s"), 404, "not_found")


async def test_a_link_stops_working_when_it_expires(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO_FILE)
    file_id = await _upload(client, kit, "a.txt", b"abc", "text/plain")
    services.file_links.ttl_s = 2  # links carry whole seconds: a fresh one may already be 1 s old
    ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": file_id}
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"doc": ref}, "user": "u1"})
    url = r.json()["data"]["outputs"]["doc"]["url"]
    assert (await client.get(url)).status_code == 200
    await asyncio.sleep(3.1)
    assert_dify_error(await client.get(url), 404, "not_found")


class _FileServer:
    """A loopback server answering every GET with a PNG attachment, as a site serving a download would."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Disposition", 'attachment; filename="chart.png"')
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/chart"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def file_server() -> Iterator[_FileServer]:
    s = _FileServer()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
async def http_app(tmp_path: Path, database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        http_node=HttpNodeSettings(allow_hosts=["127.0.0.1"]),
        files_url="https://openify.example",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_file_a_node_made_links_to_its_bytes(http_app: FastAPI, file_server: _FileServer) -> None:
    node = {
        "id": "call",
        "type": "http-request",
        "method": "get",
        "url": file_server.url,
        "headers": "",
        "params": "",
        "authorization": {"type": "no-auth"},
        "body": {"type": "none", "data": []},
        "timeout": {"connect": 5, "read": 5, "write": 5},
    }
    kit = import_app(
        http_app.state.services,
        dsl([start(), node, end(files=["call", "files"])], [("start", "call"), ("call", "end")]),
    )
    transport = httpx.ASGITransport(app=http_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://openify.example", timeout=30) as client:
        r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1"})
        data = r.json()["data"]
        assert data["status"] == "succeeded", data
        (made,) = data["outputs"]["files"]
        assert made["transfer_method"] == "tool_file" and made["filename"] == "chart.png"
        url = made["url"]
        assert url.startswith(f"https://openify.example/files/tools/{made['id']}.png?timestamp="), url

        opened = await client.get(url)
        assert opened.status_code == 200 and opened.content == PNG
        assert opened.headers["content-type"] == "image/png"
        attached = await client.get(url + "&as_attachment=true")
        assert attached.headers["content-disposition"] == "attachment; filename*=UTF-8''chart.png"

        assert_dify_error(await client.get(_with(url, nonce="0" * 32)), 403, "forbidden")  # Dify: 403 here
        gone = str(uuid.uuid4())
        links = http_app.state.services.file_links
        assert_dify_error(await client.get(links.tool_file(gone, ".png")), 404, "not_found")


# --- chat messages ---------------------------------------------------------------------------------------------------
async def test_message_files_link_to_their_uploads(client: httpx.AsyncClient, chat: AppKit) -> None:
    file_id = await _upload(client, chat, "dot.png", PNG, "image/png")
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": file_id}]
    events = await chatkit.streaming(client, chat, query="look", files=files, auto_generate_name=False)
    end_event = events[-1]
    assert end_event["event"] == "message_end"
    (sent,) = end_event["files"]
    assert sent["url"].startswith(f"/files/{file_id}/file-preview?")
    assert (await client.get(sent["url"])).content == PNG

    q = {"conversation_id": end_event["conversation_id"], "user": "u1"}
    (stored,) = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"][0]["message_files"]
    assert stored["upload_file_id"] == file_id
    opened = await client.get(stored["url"])
    assert opened.status_code == 200 and opened.content == PNG and opened.headers["content-type"] == "image/png"


async def test_svg_and_html_are_always_downloads(client: httpx.AsyncClient, chat: AppKit) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    file_id = await _upload(client, chat, "x.svg", svg, "image/svg+xml")
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": file_id}]
    events = await chatkit.streaming(client, chat, query="look", files=files, auto_generate_name=False)
    opened = await client.get(events[-1]["files"][0]["url"])
    assert opened.content == svg
    assert opened.headers["content-disposition"].startswith("attachment;")
    assert opened.headers["content-type"] == "application/octet-stream"


ACTIVE = b"<html><script>alert(document.cookie)</script></html>"


@pytest.mark.parametrize(
    ("name", "claimed"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("page.html", "Text/HTML"),
        ("feed.xml", "text/xml"),
        ("x.svg", "image/svg+xml"),
        ("page.xhtml", "application/xhtml+xml"),
        ("page.html", "application/octet-stream"),  # the type is then guessed from the name
        ("a.js", "application/javascript"),
    ],
)
async def test_active_content_is_always_a_download(
    client: httpx.AsyncClient, chat: AppKit, name: str, claimed: str
) -> None:
    r = await client.post("/v1/files/upload", headers=chat.auth, files={"file": (name, ACTIVE, claimed)})
    assert r.status_code == 201, r.text
    opened = await client.get(r.json()["source_url"])
    assert opened.status_code == 200 and opened.content == ACTIVE
    assert opened.headers["content-disposition"].startswith("attachment;")
    assert opened.headers["content-type"] == "application/octet-stream"
    assert opened.headers["x-content-type-options"] == "nosniff"
    assert opened.headers["content-security-policy"] == "sandbox"


async def test_passive_types_open_inline_and_never_sniffed(client: httpx.AsyncClient, chat: AppKit) -> None:
    for name, claimed, data in [
        ("dot.png", "image/png", PNG),
        ("a.pdf", "application/pdf", b"%PDF-1.4"),
        ("a.txt", "text/plain", ACTIVE),
    ]:
        r = await client.post("/v1/files/upload", headers=chat.auth, files={"file": (name, data, claimed)})
        opened = await client.get(r.json()["source_url"])
        assert opened.status_code == 200 and "content-disposition" not in opened.headers, name
        assert opened.headers["content-type"].split(";")[0] == claimed
        assert opened.headers["x-content-type-options"] == "nosniff"  # text/plain holding HTML stays text
        assert opened.headers["content-security-policy"] == "sandbox"


async def test_a_non_ascii_signature_is_refused_not_a_crash(http_app: FastAPI) -> None:
    links = http_app.state.services.file_links
    transport = httpx.ASGITransport(app=http_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        file_id = str(uuid.uuid4())
        upload, tool = links.upload_file(file_id), links.tool_file(file_id, ".png")
        # Dify: an upload link with a bad signature is 404 "File not found or signature is invalid", a tool link 403
        for sign in ("签名", "é" * 44, "%FF"):
            assert_dify_error(await client.get(_with(upload, sign=sign)), 404, "not_found")
            assert_dify_error(await client.get(_with(tool, sign=sign)), 403, "forbidden")
        assert_dify_error(await client.get(_with(upload, timestamp="²")), 404, "not_found")


async def test_a_vision_model_gets_an_uploads_bytes_not_its_link(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    services.file_links.base_url = "https://openify.example"  # absolute links, which a provider could be handed
    llm = {
        "id": "see",
        "type": "llm",
        "model": {"provider": "openai", "name": "gpt-4o", "mode": "chat", "completion_params": {}},
        "prompt_template": [{"role": "user", "text": "describe"}],
        "vision": {"enabled": True, "configs": {"variable_selector": ["sys", "files"], "detail": "high"}},
        "context": {"enabled": False, "variable_selector": []},
    }
    kit = import_app(services, dsl([start(), llm, end(text=["see", "text"])], [("start", "see"), ("see", "end")]))
    file_id = await _upload(client, kit, "dot.png", PNG, "image/png")
    ref = {"type": "image", "transfer_method": "local_file", "upload_file_id": file_id}
    fake_llm.reply("a dot")
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1", "files": [ref]})
    assert r.json()["data"]["outputs"] == {"text": "a dot"}, r.text
    parts = fake_llm.received[-1]["messages"][-1]["content"]
    assert parts[-1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
