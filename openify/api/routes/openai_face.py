"""Every app as an OpenAI model: `/openai/v1/chat/completions` and `/openai/v1/models`, with an app key as the bearer.

A sub-application mounted at `/openai/v1` so that its errors take OpenAI's shape (`{"error": {...}}`) instead of
Dify's envelope: OpenAI SDKs read `error.message` and `error.code`. The turn itself is the app's own service,
through `services/openai_face.py`."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response, StreamingResponse

from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.openai_face import (
    ChatCompletionRequest,
    chunk_body,
    completion_body,
    error_body,
    model_body,
    usage_body,
    usage_chunk,
)
from openify.errors import InvalidParam, NotFound, OpenifyError
from openify.services.container import Services
from openify.services.openai_face import ChatText, FaceDelta, FaceEnd, FaceError, OpenAIFace

PREFIX = "/openai/v1"
CONVERSATION_HEADER = "X-Conversation-Id"
log = logging.getLogger("openify.api.openai")
router = APIRouter(tags=["openai"])


class ModelNotFound(NotFound):
    code = "model_not_found"


def _created(value: Any) -> int:
    return int(value.timestamp()) if hasattr(value, "timestamp") else int(time.time())


def _model_id(ctx: AppKey) -> str:
    return ctx.app.name or ctx.app.id


@router.get("/models")
async def list_models(ctx: AppKey) -> dict[str, Any]:
    """What the key reaches: an app key reaches its one app."""
    app = ctx.app
    return {"object": "list", "data": [model_body(_model_id(ctx), _created(app.created_at), app.id, app.mode)]}


@router.get("/models/{model}")
async def get_model(model: str, ctx: AppKey) -> dict[str, Any]:
    _check_model(ctx, model)
    return model_body(_model_id(ctx), _created(ctx.app.created_at), ctx.app.id, ctx.app.mode)


def _check_model(ctx: AppKey, model: str) -> None:
    if model.strip() not in (ctx.app.id, ctx.app.name):
        raise ModelNotFound(f"The model `{model}` does not exist or this key does not reach it.")


def _conversation_id(request: Request) -> str | None:
    value = (request.headers.get(CONVERSATION_HEADER) or "").strip()
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidParam(f"{CONVERSATION_HEADER} is not a valid uuid", params=CONVERSATION_HEADER) from None


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, ctx: AppKey, services: ServicesDep
) -> Response:
    _check_model(ctx, body.model)
    face = OpenAIFace(services)
    messages = [ChatText(m.role, m.text()) for m in body.messages]
    user = body.user or "openai-face-user"  # Dify's end user; OpenAI's `user` is optional
    turn = await face.start(ctx.app, user, messages, _conversation_id(request), body.inputs or {})
    headers = {CONVERSATION_HEADER: turn.conversation_id} if turn.conversation_id else {}
    cid, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body.model
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        frames = _stream(turn.events, cid, created, model, include_usage)
        return StreamingResponse(
            frames, media_type="text/event-stream", headers={"Cache-Control": "no-cache", **headers}
        )
    parts: list[str] = []
    usage = usage_body(0, 0, 0)
    async for ev in turn.events:
        if isinstance(ev, FaceDelta):
            parts.append(ev.text)
        elif isinstance(ev, FaceEnd):
            usage = usage_body(ev.prompt_tokens, ev.completion_tokens, ev.total_tokens)
        else:
            raise ev.error
    # The generation's final answer when there is one: output moderation may have replaced the streamed text.
    text = "".join(turn.answer) if turn.answer else "".join(parts)
    out = completion_body(cid, created, model, text, usage)
    return Response(orjson.dumps(out), media_type="application/json", headers=headers)


def _frame(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _stream(
    events: AsyncIterator[FaceDelta | FaceEnd | FaceError], cid: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    yield _frame(chunk_body(cid, created, model, {"role": "assistant", "content": ""}))
    try:
        async for ev in events:
            if isinstance(ev, FaceDelta):
                if ev.text:
                    yield _frame(chunk_body(cid, created, model, {"content": ev.text}))
            elif isinstance(ev, FaceEnd):
                yield _frame(chunk_body(cid, created, model, {}, "stop"))
                if include_usage:
                    usage = usage_body(ev.prompt_tokens, ev.completion_tokens, ev.total_tokens)
                    yield _frame(usage_chunk(cid, created, model, usage))
            else:
                yield _frame(error_body(ev.error.status, ev.error.code, ev.error.detail))
                break
    except Exception as exc:  # an error after the first byte can only be a frame: the status is sent
        log.exception("openai face stream failed")
        err = exc if isinstance(exc, OpenifyError) else OpenifyError()
        yield _frame(error_body(err.status, err.code, err.detail))
    yield b"data: [DONE]\n\n"


def _error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="api"'} if status == 401 else None
    return JSONResponse(error_body(status, code, message, param), status_code=status, headers=headers)


def face_app(services: Services) -> FastAPI:
    """The sub-application mounted at PREFIX, with OpenAI's error shape for every error it answers."""
    sub = FastAPI(title="Openify OpenAI face", openapi_url=None, docs_url=None, redoc_url=None)
    sub.state.services = services
    sub.include_router(router)

    async def on_openify(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenifyError)  # noqa: S101 - registered for this type only
        param = exc.extra.get("params")
        return _error(exc.status, exc.code, exc.detail, param if isinstance(param, str) else None)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc") or () if p != "body"]
        field = ".".join(loc) or "body"
        return _error(400, "invalid_request_error", f"{field}: {first.get('msg', 'invalid value')}", field)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
        return _error(exc.status_code, "not_found" if exc.status_code == 404 else "http_error", str(exc.detail))

    async def on_other(_: Request, exc: Exception) -> JSONResponse:
        log.exception("openai face request failed", exc_info=exc)
        return _error(500, "internal_server_error", "Internal Server Error, please contact support.")

    sub.add_exception_handler(OpenifyError, on_openify)
    sub.add_exception_handler(RequestValidationError, on_validation)
    sub.add_exception_handler(StarletteHTTPException, on_http)
    sub.add_exception_handler(Exception, on_other)
    return sub
