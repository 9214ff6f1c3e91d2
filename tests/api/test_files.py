"""POST /files/upload, GET /files/{id}/preview, and files in chat requests (images reach vision models)."""

from __future__ import annotations

import base64

import httpx
import pytest

from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import blocking
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures; the zhouyi app has image upload on
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def _upload(
    client: httpx.AsyncClient,
    kit: AppKit,
    name: str = "dot.png",
    data: bytes = PNG,
    mime: str = "image/png",
    user: str = "u1",
) -> httpx.Response:
    return await client.post(
        "/v1/files/upload", headers=kit.auth, files={"file": (name, data, mime)}, data={"user": user}
    )


async def test_upload_then_send_image_to_a_vision_model(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    r = await _upload(client, chat)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["name"] == "dot.png" and up["size"] == len(PNG) and up["extension"] == "png"
    assert up["mime_type"] == "image/png" and up["preview_url"] is None and up["created_by"]
    # not attached to a message yet: no preview; the signed source_url opens it at once, with no key
    assert_dify_error(await client.get(f"/v1/files/{up['id']}/preview", headers=chat.auth), 404, "file_not_found")
    assert up["source_url"].startswith(f"/files/{up['id']}/file-preview?timestamp=") and "sign=" in up["source_url"]
    assert up["original_url"] == up["source_url"]
    opened = await client.get(up["source_url"])
    assert opened.status_code == 200 and opened.content == PNG and opened.headers["content-type"] == "image/png"

    files = [
        {"type": "image", "transfer_method": "local_file", "upload_file_id": up["id"]},
        {"type": "image", "transfer_method": "remote_url", "url": "https://example.com/cat.jpg"},
    ]
    r = await blocking(client, chat, query="what is this?", files=files, auto_generate_name=False)
    assert r.status_code == 200, r.text
    content = fake_llm.received[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert content[2]["image_url"]["url"] == "https://example.com/cat.jpg"

    q = {"conversation_id": r.json()["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"][0]["message_files"]
    assert [(f["transfer_method"], f["belongs_to"], f["type"]) for f in stored] == [
        ("local_file", "user", "image"),
        ("remote_url", "user", "image"),
    ]
    assert stored[0]["upload_file_id"] == up["id"]

    r = await client.get(f"/v1/files/{up['id']}/preview", headers=chat.auth)
    assert r.status_code == 200 and r.content == PNG and r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "private, max-age=3600"  # keyed: never in a shared cache
    r = await client.get(f"/v1/files/{up['id']}/preview", headers=chat.auth, params={"as_attachment": "true"})
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''dot.png"


async def test_streaming_message_end_lists_the_files(client: httpx.AsyncClient, chat: AppKit) -> None:
    up = (await _upload(client, chat)).json()
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": up["id"]}]
    events = await chatkit.streaming(client, chat, query="look", files=files, auto_generate_name=False)
    end = events[-1]
    assert end["event"] == "message_end"
    assert [f["upload_file_id"] for f in end["files"]] == [up["id"]]
    assert set(end["files"][0]) == {
        "related_id",
        "extension",
        "filename",
        "size",
        "mime_type",
        "transfer_method",
        "type",
        "url",
        "upload_file_id",
        "remote_url",
    }


async def test_another_users_or_apps_file_is_refused(
    client: httpx.AsyncClient, chat: AppKit, services: Services
) -> None:
    up = (await _upload(client, chat, user="alice")).json()
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": up["id"]}]
    r = await blocking(client, chat, query="x", user="bob", files=files)
    assert_dify_error(r, 400, "invalid_param")
    assert r.json()["message"] == "files[0]: Invalid upload file"  # Dify's file factory's words
    other = chatkit.import_app(services, chatkit.CHAT_DSL)
    r = await blocking(client, other, query="x", user="alice", files=files)
    assert_dify_error(r, 400, "invalid_param")
    await blocking(client, chat, query="x", user="alice", files=files, auto_generate_name=False)
    r = await client.get(f"/v1/files/{up['id']}/preview", headers=other.auth)
    assert_dify_error(r, 403, "file_access_denied")


async def test_upload_errors(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await client.post("/v1/files/upload", headers=chat.auth, data={"user": "u1"}, files={"other": ("a.txt", b"x")})
    assert_dify_error(r, 400, "no_file_uploaded")
    r = await client.post(
        "/v1/files/upload",
        headers=chat.auth,
        data={"user": "u1"},
        files=[("file", ("a.txt", b"x", "text/plain")), ("file", ("b.txt", b"y", "text/plain"))],
    )
    assert_dify_error(r, 400, "too_many_files")
    big = b"\0" * (10 * 1024 * 1024 + 1)
    r = await _upload(client, chat, "big.png", big)
    body = assert_dify_error(r, 413, "file_too_large")
    assert body["message"] == ""
    r = await _upload(client, chat, "blob", b"data", mime="")
    assert_dify_error(r, 415, "unsupported_file_type")
    r = await client.post("/v1/files/upload", headers=chat.auth, json={"user": "u1"})
    assert_dify_error(r, 415, "unsupported_media_type")
    assert_dify_error(await client.get("/v1/files/nope/preview", headers=chat.auth), 404, "file_not_found")


@pytest.mark.parametrize(
    "files",
    [
        [{"type": "image", "transfer_method": "local_file", "upload_file_id": "not-a-uuid"}],
        [{"type": "image", "transfer_method": "ftp", "url": "ftp://x"}],
        [{"type": "picture", "transfer_method": "remote_url", "url": "https://x/y.png"}],
        [{"type": "image", "transfer_method": "remote_url", "url": "file:///etc/passwd"}],
        [{"type": "image", "transfer_method": "local_file", "upload_file_id": "00000000-0000-0000-0000-000000000000"}],
        "nope",
    ],
)
async def test_bad_files_in_a_request(client: httpx.AsyncClient, chat: AppKit, files: object) -> None:
    r = await blocking(client, chat, query="x", files=files)
    assert_dify_error(r, 400, "invalid_param")
