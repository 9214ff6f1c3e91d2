"""The console API: off without OPENIFY_ADMIN_TOKEN, guarded by it, and able to manage apps and keys."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from fastapi import FastAPI
from pydantic import SecretStr

from openify.app import create_app
from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.conftest import DSL_DIR

TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(settings.model_copy(update={"admin_token": SecretStr(TOKEN)}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_console_is_off_without_admin_token(client: httpx.AsyncClient) -> None:
    assert_dify_error(await client.get("/console/api/apps", headers=AUTH), 404, "not_found")


async def test_console_needs_the_token(admin: httpx.AsyncClient) -> None:
    assert_dify_error(await admin.get("/console/api/apps"), 401, "unauthorized")
    assert_dify_error(
        await admin.get("/console/api/apps", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"
    )


async def test_weak_admin_token_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(_env_file=None, admin_token="short")  # type: ignore[call-arg]


async def test_import_export_list_delete_and_keys(admin: httpx.AsyncClient) -> None:
    text = (DSL_DIR / "25-completion-noversion-sql-creator.yml").read_text()
    r = await admin.post("/console/api/apps/imports", headers=AUTH, json={"yaml_content": text})
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["api_key"].startswith("app-")
    app_id = created["app_id"]

    info = await admin.get("/v1/info", headers={"Authorization": f"Bearer {created['api_key']}"})
    assert info.json()["mode"] == "completion"

    listed = (await admin.get("/console/api/apps", headers=AUTH)).json()["data"]
    assert [a["id"] for a in listed] == [app_id]

    exported = (await admin.get(f"/console/api/apps/{app_id}/export", headers=AUTH)).json()["data"]
    assert yaml.safe_load(exported)["model_config"] == yaml.safe_load(text)["model_config"]

    k = (await admin.post(f"/console/api/apps/{app_id}/api-keys", headers=AUTH)).json()
    assert k["token"].startswith("app-") and k["token"] not in str(k["token_hint"])
    keys = (await admin.get("/console/api/api-keys", headers=AUTH)).json()["data"]
    assert len(keys) == 2 and all("token" not in key for key in keys)
    assert (await admin.delete(f"/console/api/api-keys/{k['id']}", headers=AUTH)).status_code == 204
    assert_dify_error(
        await admin.get("/v1/info", headers={"Authorization": f"Bearer {k['token']}"}), 401, "unauthorized"
    )

    ds = (await admin.post("/console/api/datasets/api-keys", headers=AUTH)).json()
    assert ds["token"].startswith("dataset-") and ds["app_id"] is None

    assert (await admin.delete(f"/console/api/apps/{app_id}", headers=AUTH)).status_code == 204
    assert (await admin.get("/console/api/apps", headers=AUTH)).json()["data"] == []
    gone = await admin.get("/v1/info", headers={"Authorization": f"Bearer {created['api_key']}"})
    assert_dify_error(gone, 401, "unauthorized")


async def test_bad_import_is_400_and_creates_nothing(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/console/api/apps/imports", headers=AUTH, json={"yaml_content": "app: [unclosed"})
    body = assert_dify_error(r, 400, "invalid_param")
    assert "YAML" in str(body["message"])
    assert (await admin.get("/console/api/apps", headers=AUTH)).json()["data"] == []


async def test_missing_field_is_400_invalid_param_naming_it(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/console/api/apps/imports", headers=AUTH, json={})
    body = assert_dify_error(r, 400, "invalid_param")
    assert "yaml_content" in str(body["message"])


async def test_malformed_json_is_400_bad_request(admin: httpx.AsyncClient) -> None:
    r = await admin.post(
        "/console/api/apps/imports", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert_dify_error(r, 400, "bad_request")


async def test_key_listing_shows_when_a_key_was_last_used(admin: httpx.AsyncClient) -> None:
    text = (DSL_DIR / "25-completion-noversion-sql-creator.yml").read_text()
    created = (await admin.post("/console/api/apps/imports", headers=AUTH, json={"yaml_content": text})).json()
    (unused,) = (await admin.get("/console/api/api-keys", headers=AUTH)).json()["data"]
    assert unused["last_used_at"] is None
    before = int(time.time())
    assert (await admin.get("/v1/info", headers={"Authorization": f"Bearer {created['api_key']}"})).status_code == 200
    (used,) = (await admin.get("/console/api/api-keys", headers=AUTH)).json()["data"]
    assert isinstance(used["last_used_at"], int) and before - 1 <= used["last_used_at"] <= time.time() + 1
