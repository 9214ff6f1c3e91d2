"""Console API under /console/api: import/export/list/delete apps, create/list/revoke keys.

Guarded by OPENIFY_ADMIN_TOKEN; when that is unset the whole API answers 404 as if absent.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from openify.api.deps import ServicesDep, bearer_token
from openify.api.schemas.bodies import JsonBody
from openify.api.timefmt import unix
from openify.errors import NotFound, Unauthorized
from openify.services.keys import KeyInfo
from openify.services.provider_settings import ProviderSettingsService


def require_admin(request: Request, services: ServicesDep) -> None:
    secret = services.settings.admin_token
    if secret is None:
        raise NotFound("The console API is disabled: set OPENIFY_ADMIN_TOKEN to enable it.")
    if not hmac.compare_digest(bearer_token(request).encode(), secret.get_secret_value().encode()):
        raise Unauthorized("Access token is invalid")


router = APIRouter(prefix="/console/api", tags=["console"], dependencies=[Depends(require_admin)])
Admin = Annotated[None, Depends(require_admin)]


class ImportBody(JsonBody):
    yaml_content: str = Field(min_length=1, description="The DSL YAML text")


def _key(k: KeyInfo) -> dict[str, Any]:
    return {
        "id": k.id,
        "type": k.type,
        "app_id": k.app_id,
        "token_hint": k.hint,
        "created_at": unix(k.created_at),
        "last_used_at": unix(k.last_used_at),
    }


@router.post("/apps/imports", summary="Import an app from DSL YAML; returns the app id and a new key")
async def import_app(body: ImportBody, services: ServicesDep) -> dict[str, Any]:
    app, warnings = await run_in_threadpool(services.apps.import_dsl, body.yaml_content)
    token, _ = await run_in_threadpool(services.keys.create, "app", app.id)
    missing = [m.as_dict() for m in await services.tools.missing_for_app(app)]
    return {
        "app_id": app.id,
        "api_key": token,
        "mode": app.mode,
        "name": app.name,
        "warnings": warnings,
        "missing_plugins": missing,
    }


@router.get("/apps", summary="List apps")
def list_apps(services: ServicesDep) -> dict[str, Any]:
    return {
        "data": [
            {"id": a.id, "name": a.name, "mode": a.mode, "description": a.description} for a in services.apps.list()
        ]
    }


@router.get("/apps/{app_id}/export", summary="Export an app as DSL YAML")
def export_app(app_id: str, services: ServicesDep, include_secret: bool = False) -> dict[str, Any]:
    # Dify's `include_secret` query parameter: secret environment values are exported as "" unless true.
    return {"data": services.apps.export(app_id, include_secret)}


@router.delete("/apps/{app_id}", status_code=204, summary="Delete an app and its keys")
def delete_app(app_id: str, services: ServicesDep) -> Response:
    services.apps.delete(app_id)
    services.keys.forget_app(app_id)
    return Response(status_code=204)


@router.post("/apps/{app_id}/api-keys", summary="Create an app key (shown once)")
def create_app_key(app_id: str, services: ServicesDep) -> dict[str, Any]:
    token, info = services.keys.create("app", app_id)
    return {**_key(info), "token": token}


@router.post("/datasets/api-keys", summary="Create a dataset key (shown once)")
def create_dataset_key(services: ServicesDep) -> dict[str, Any]:
    token, info = services.keys.create("dataset")
    return {**_key(info), "token": token}


@router.get("/api-keys", summary="List keys (hints only)")
def list_keys(services: ServicesDep, app_id: str | None = None) -> dict[str, Any]:
    return {"data": [_key(k) for k in services.keys.list(app_id)]}


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke a key")
def revoke_key(key_id: str, services: ServicesDep) -> Response:
    services.keys.revoke(key_id)
    return Response(status_code=204)


class ProviderBody(JsonBody):
    """A provider entry of providers.yaml (see openify/providers/config.py for every field)."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    base_url: str | None = None
    api_key: str | None = Field(default=None, description="Write-only: never returned")
    api_version: str | None = None
    aliases: list[str] | None = None
    models: dict[str, dict[str, Any]] | None = None


class DefaultBody(JsonBody):
    default: str | None


def _providers(services: ServicesDep) -> ProviderSettingsService:
    return ProviderSettingsService(services.settings, services.models)


@router.get("/providers", summary="Configured model providers (credentials never shown)")
def list_providers(services: ServicesDep) -> dict[str, Any]:
    return _providers(services).list()


@router.put("/providers/{name}", summary="Create or replace a model provider in providers.yaml")
def put_provider(name: str, body: ProviderBody, services: ServicesDep) -> dict[str, Any]:
    return _providers(services).put(name, body.model_dump(exclude_none=True))


@router.delete("/providers/{name}", status_code=204, summary="Remove a model provider from providers.yaml")
def delete_provider(name: str, services: ServicesDep) -> Response:
    _providers(services).delete(name)
    return Response(status_code=204)


@router.put("/providers-default", summary="The provider serving every DSL provider name not configured")
def set_default_provider(body: DefaultBody, services: ServicesDep) -> dict[str, Any]:
    _providers(services).set_default(body.default)
    return _providers(services).list()
