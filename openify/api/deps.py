"""Request dependencies as Annotated aliases: AppKey, DatasetKey, ServicesDep, SettingsDep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from openify.errors import Forbidden, NotFound, Unauthorized
from openify.services.container import Services
from openify.services.keys import KeyPrincipal, KeyType
from openify.settings import Settings
from openify.storage.tables import App


# The dependencies below are `async def` on purpose: FastAPI runs a sync dependency in its thread pool,
# a hand-off that cost ~17% of a blocking chat request's CPU. They answer from in-memory caches and go to
# the database (in the thread pool) only on a miss.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer KEY`, with Dify's messages for each malformed form."""
    header = request.headers.get("authorization")
    if not header or " " not in header.strip():
        raise Unauthorized("Authorization header must be provided and start with 'Bearer'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization scheme must be 'Bearer'")
    return token.strip()


async def _principal(services: Services, request: Request, type_: KeyType) -> KeyPrincipal:
    token = bearer_token(request)
    found, principal = services.keys.cached(token, type_)
    if not found:
        principal = await run_in_threadpool(services.keys.authenticate, token, type_)
    if principal is None:
        raise Unauthorized("Access token is invalid")
    return principal


@dataclass(frozen=True, slots=True)
class AppContext:
    """The app an app key opens, as loaded for this request."""

    app: App
    key: KeyPrincipal

    @property
    def app_id(self) -> str:
        return self.app.id


async def app_key(request: Request, services: ServicesDep) -> AppContext:
    principal = await _principal(services, request, "app")
    assert principal.app_id is not None  # noqa: S101 - app keys always name an app
    app = services.apps.cached(principal.app_id)
    if app is None:
        try:
            app = await run_in_threadpool(services.apps.get, principal.app_id)
        except NotFound:
            raise Forbidden("The app no longer exists.") from None
    if app.status != "normal":
        raise Forbidden("The app's status is abnormal.")
    if not app.enable_api:
        raise Forbidden("The app's API service has been disabled.")
    return AppContext(app, principal)


async def dataset_key(request: Request, services: ServicesDep) -> KeyPrincipal:
    return await _principal(services, request, "dataset")


AppKey = Annotated[AppContext, Depends(app_key)]
DatasetKey = Annotated[KeyPrincipal, Depends(dataset_key)]
