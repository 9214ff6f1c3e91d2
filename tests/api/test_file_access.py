"""A file value reaches a file only if the server minted it for this app and end user: a crafted one naming
another app's or another user's upload is refused, in the inputs or when a node reads it."""

from __future__ import annotations

from typing import Any

import httpx

from openify.services.container import Services
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import dsl, end, start
from tests.conftest import AppKit, import_app

EXTRACT = dsl(
    [
        start({"variable": "doc", "label": "doc", "type": "json_object", "required": True}),
        {"id": "read", "type": "document-extractor", "variable_selector": ["start", "doc"], "is_array_file": False},
        end(text=["read", "text"]),
    ],
    [("start", "read"), ("read", "end")],
)
FILE_INPUT = dsl(
    [start({"variable": "doc", "label": "doc", "type": "file", "required": True}), end(doc=["start", "doc"])],
    [("start", "end")],
)


async def _upload(client: httpx.AsyncClient, kit: AppKit, user: str, text: str) -> str:
    files = {"file": ("secret.txt", text.encode(), "text/plain")}
    r = await client.post("/v1/files/upload", headers=kit.auth, files=files, data={"user": user})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _crafted(upload_id: str, marked: bool) -> dict[str, Any]:
    value: dict[str, Any] = {
        "transfer_method": "local_file",
        "related_id": upload_id,
        "upload_file_id": upload_id,
        "extension": ".txt",
        "mime_type": "text/plain",
        "type": "document",
    }
    return {"dify_model_identity": "__dify__file__", **value} if marked else value


async def _run(client: httpx.AsyncClient, kit: AppKit, user: str, doc: Any) -> httpx.Response:
    return await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"doc": doc}, "user": user})


async def test_crafted_file_values_reach_only_the_callers_own_uploads(
    client: httpx.AsyncClient, services: Services
) -> None:
    app, other_app = import_app(services, EXTRACT), import_app(services, EXTRACT)
    own = await _upload(client, app, "alice", "alice's own notes")
    other_users = await _upload(client, app, "bob", "bob's private notes")
    other_apps = await _upload(client, other_app, "alice", "the other app's notes")

    ok = (await _run(client, app, "alice", _crafted(own, marked=False))).json()["data"]
    assert ok["status"] == "succeeded" and ok["outputs"] == {"text": "alice's own notes"}  # the control

    for upload in (other_users, other_apps):
        # a File value is never accepted from a client (Dify's file factory: "Invalid upload file")
        r = await _run(client, app, "alice", _crafted(upload, marked=True))
        assert_dify_error(r, 400, "invalid_param")
        assert "Invalid upload file" in r.json()["message"]
        # an unmarked look-alike gets through the form, but the file store refuses to read it
        r = await _run(client, app, "alice", _crafted(upload, marked=False))
        data = r.json()["data"]
        assert data["status"] == "failed" and "Invalid upload file" in data["error"], data
        assert "notes" not in r.text


async def test_a_file_input_names_only_the_callers_uploads(client: httpx.AsyncClient, services: Services) -> None:
    app, other_app = import_app(services, FILE_INPUT), import_app(services, FILE_INPUT)
    other_users = await _upload(client, app, "bob", "bob's")
    other_apps = await _upload(client, other_app, "alice", "theirs")
    for upload in (other_users, other_apps):
        ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": upload}
        r = await _run(client, app, "alice", ref)
        assert_dify_error(r, 400, "invalid_param")
        assert r.json()["message"] == "doc[0]: Invalid upload file"
