"""Probes: `GET /health` and Dify's unauthenticated `GET /v1/` welcome."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openify import __version__
from openify.security.isolation import report

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness probe; needs no key")
def health(request: Request) -> dict[str, Any]:
    # Sync on purpose (a thread): the first call may probe bubblewrap once; startup has usually done it.
    return {"status": "ok", "version": __version__, "sandbox": report(request.app.state.services.settings)}


@router.get("/", summary="Welcome; needs no key")
def welcome() -> dict[str, Any]:
    return {"welcome": "Openify, speaking the Dify OpenAPI", "api_version": "v1", "server_version": __version__}
