"""Probes: `GET /health` and Dify's unauthenticated `GET /v1/` welcome."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openify import __version__

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness probe; needs no key")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/", summary="Welcome; needs no key")
def welcome() -> dict[str, Any]:
    return {"welcome": "Openify, speaking the Dify OpenAPI", "api_version": "v1", "server_version": __version__}
