"""A NUL character sent anywhere (path, query, JSON body, form field, file name) to any route never gives a 5xx,
on PostgreSQL (whose text cannot hold one) as on SQLite. The routes are read from the app's own OpenAPI schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from openify.app import create_app
from openify.settings import Settings
from tests.api import chatkit
from tests.api.knowledge import add_text, create_dataset
from tests.api.workflow_kit import dsl, end, start, text_input
from tests.conftest import import_app
from tests.fake_llm.server import FakeLLM

NUL = "\x00"
ADMIN = "admin-token-0123456789abcdef"
WORKFLOW = dsl([start(text_input("q")), end(q=["start", "q"])], [("start", "end")])
# Body members the routes read, beside those the schema lists (some routes parse their body themselves)
COMMON = ("query", "user", "inputs", "name", "text", "content", "keyword", "conversation_id", "message_id", "rating")


@pytest.fixture
async def app(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Any:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "providers.yaml").write_text(chatkit.providers_yaml(fake_llm), encoding="utf-8")
    settings = Settings(_env_file=None, data_dir=data, database_url=database_url, admin_token=SecretStr(ADMIN))  # type: ignore[call-arg]
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _body(operation: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    names = set(schema.get("properties", {})) | set(COMMON)
    body: dict[str, Any] = dict.fromkeys(names, f"a{NUL}b")
    body["inputs"] = {"q": f"a{NUL}b", f"k{NUL}": NUL}
    return body


async def test_nul_anywhere_is_never_a_5xx(app: FastAPI, fake_llm: FakeLLM) -> None:
    services = app.state.services
    chat, workflow = import_app(services, chatkit.CHAT_DSL), import_app(services, WORKFLOW)
    dataset_token, _ = services.keys.create("dataset")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        ds_auth = {"Authorization": f"Bearer {dataset_token}"}
        ds = (await create_dataset(client, ds_auth, "nul"))["id"]
        doc = (await add_text(client, ds_auth, ds, "d", "some text"))["document"]["id"]
        real = {"dataset_id": ds, "document_id": doc}
        keys = [chat.auth, workflow.auth, ds_auth, {"Authorization": f"Bearer {ADMIN}"}]

        schema = app.openapi()
        components = schema.get("components", {}).get("schemas", {})
        failures: list[str] = []
        routes = 0
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                routes += 1
                params = operation.get("parameters", [])
                url = path
                for p in params:
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", real.get(p["name"], "a") + "%00")
                query = {p["name"]: f"a{NUL}b" for p in params if p["in"] == "query"} | {"user": f"u{NUL}1"}
                body = _body(operation, components)
                for auth in keys:
                    fake_llm.reply("ok")
                    r = await client.request(method.upper(), url, headers=auth, params=query, json=body)
                    if r.status_code >= 500:
                        failures.append(f"{method.upper()} {path}: {r.status_code} {r.text[:200]}")
        assert routes > 60  # every Service API route, not a handful
        # form fields and file names, raw (httpx would percent-encode a NUL in a file name)
        boundary = "nulboundary"
        raw = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\nu{NUL}1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a{NUL}b.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\nx\r\n--{boundary}--\r\n"
        ).encode()
        headers = {**chat.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        r = await client.post("/v1/files/upload", headers=headers, content=raw)
        assert r.status_code == 201 and r.json()["name"] == "ab.txt", r.text
        form = {"data": json.dumps({"indexing_technique": "economy", "name": f"n{NUL}"})}
        r = await client.post(
            f"/v1/datasets/{ds}/document/create-by-file",
            headers=ds_auth,
            files={"file": (f"a{NUL}.txt", b"x")},
            data=form,
        )
        assert r.status_code < 500, r.text
    assert failures == []
