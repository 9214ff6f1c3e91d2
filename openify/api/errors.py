"""The only place that builds Dify's error envelope `{"code", "message", "status"}`."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openify.errors import OpenifyError

log = logging.getLogger("openify.api")

# Werkzeug's texts, which Dify clients see for routing errors.
_NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
)
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "request_entity_too_large", 415: "unsupported_media_type", 422: "invalid_param",
    429: "too_many_requests",
}


def envelope(exc: BaseException) -> dict[str, Any]:
    """The body for any exception; unexpected ones expose nothing."""
    if isinstance(exc, OpenifyError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.detail, "status": exc.status}
        if "params" in exc.extra:
            body["params"] = exc.extra["params"]
        return body
    return {"code": "internal_server_error", "message": "Internal Server Error, please contact support.", "status": 500}


def error_response(exc: BaseException) -> JSONResponse:
    body = envelope(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="api"'} if body["status"] == 401 else None
    return JSONResponse(body, status_code=body["status"], headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # Only the first element is the location: a field may itself be named `query` (chat-messages has one).
    rest = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "form", "cookie") else loc
    parts = [str(p) for p in rest]
    return ".".join(parts) or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        return JSONResponse(
            {"code": "bad_request", "message": f"Failed to decode JSON object: {ctx.get('error', 'invalid JSON')}", "status": 400},
            status_code=400,
        )
    field = _field_name(tuple(first.get("loc") or ()))
    if first.get("type") == "missing":
        message = f"{field} is required"
    else:
        message = f"{field}: {first.get('msg', 'invalid value')}"
    return JSONResponse({"code": "invalid_param", "message": message, "status": 400, "params": field}, status_code=400)


def install(app: FastAPI) -> None:
    async def on_openify(_: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
        return _validation_response(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = _NOT_FOUND if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 405:
            message = "The method is not allowed for the requested URL."
        return JSONResponse({"code": code, "message": message, "status": exc.status_code}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(exc)

    app.add_exception_handler(OpenifyError, on_openify)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def json_error_body(exc: BaseException) -> str:
    return json.dumps(envelope(exc), ensure_ascii=False, separators=(",", ":"))
