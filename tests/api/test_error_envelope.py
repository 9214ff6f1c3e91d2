"""Every error path answers Dify's envelope {"code", "message", "status"} with the right status."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from openify.services.container import Services
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit


async def test_missing_header_is_401_with_challenge(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    r = await client.get("/v1/info")
    body = assert_dify_error(r, 401, "unauthorized")
    assert body["message"] == "Authorization header must be provided and start with 'Bearer'"
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_header_without_token_is_401(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    r = await client.get("/v1/info", headers={"Authorization": "Bearer"})
    assert_dify_error(r, 401, "unauthorized")


async def test_wrong_scheme_is_401(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    r = await client.get("/v1/info", headers={"Authorization": f"Basic {chat_app.key}"})
    body = assert_dify_error(r, 401, "unauthorized")
    assert body["message"] == "Authorization scheme must be 'Bearer'"


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    r = await client.get("/v1/info", headers={"Authorization": f"bearer {chat_app.key}"})
    assert r.status_code == 200, r.text


async def test_unknown_key_is_401(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    r = await client.get("/v1/info", headers={"Authorization": "Bearer app-doesnotexist"})
    body = assert_dify_error(r, 401, "unauthorized")
    assert body["message"] == "Access token is invalid"


async def test_dataset_key_on_app_endpoint_is_401(
    client: httpx.AsyncClient, chat_app: AppKit, dataset_key: dict[str, str]
) -> None:
    # Dify looks keys up by (token, type): a key of the other type is an invalid key.
    r = await client.get("/v1/info", headers=dataset_key)
    assert_dify_error(r, 401, "unauthorized")


async def test_revoked_key_is_401(client: httpx.AsyncClient, services: Services, chat_app: AppKit) -> None:
    assert (await client.get("/v1/info", headers=chat_app.auth)).status_code == 200
    services.keys.revoke(chat_app.key)
    assert_dify_error(await client.get("/v1/info", headers=chat_app.auth), 401, "unauthorized")


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    assert_dify_error(await client.get("/v1/no-such-thing"), 404, "not_found")
    assert_dify_error(await client.get("/nowhere"), 404, "not_found")


async def test_wrong_method_is_405(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    r = await client.delete("/v1/info", headers=chat_app.auth)
    assert_dify_error(r, 405, "method_not_allowed")


async def test_unexpected_exception_is_500_without_details(
    client: httpx.AsyncClient, services: Services, chat_app: AppKit
) -> None:
    assert (await client.get("/v1/info", headers=chat_app.auth)).status_code == 200  # key and app now cached
    # A real failure below the API: a table disappears under the running server.
    with services.db.engine.begin() as c:
        cascade = "" if services.db.is_sqlite else " CASCADE"
        c.execute(sa.text(f"DROP TABLE end_users{cascade}"))
    r = await client.get("/v1/end-users/0b7f3a52-9a38-4d0e-8a7e-3f0d6f5b8a11", headers=chat_app.auth)
    body = assert_dify_error(r, 500, "internal_server_error")
    text = r.text.lower()
    for leak in ("traceback", "sqlalchemy", "operationalerror", "undefinedtable", "end_users", "select"):
        assert leak not in text, r.text
    assert body["message"] == "Internal Server Error, please contact support."
