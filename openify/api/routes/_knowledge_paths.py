"""Checks shared by the Knowledge routes (and the annotation and audio ones): ids are `<uuid:…>` in Dify (others are
a 404), bodies are JSON."""

from __future__ import annotations

import uuid

from fastapi import Depends, Request

from openify.errors import NotFound, UnsupportedMediaType


def uuid_or_404(value: str, what: str = "Dataset") -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found.") from None
    return value


def require_json(request: Request) -> None:
    """Dify answers a JSON endpoint called with another content type with 415 (Flask's get_json)."""
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType()


JSON_BODY = [Depends(require_json)]


def no_nul(value: str | None) -> str | None:
    """A query or path string without NUL characters, which PostgreSQL text cannot hold."""
    return value.replace("\x00", "") if value is not None else None
