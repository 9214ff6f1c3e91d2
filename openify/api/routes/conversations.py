"""Conversations: list, delete, rename, and conversation variables."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from openify.api.deps import AppKey, ServicesDep, SettingsDep
from openify.api.schemas.chat_history import DeleteBody, RenameBody, VariableBody, conversation, variable
from openify.errors import InvalidParam, NotChatApp, UnsupportedMediaType
from openify.services.chat.conversations import ConversationNotFound
from openify.storage.tables import App

router = APIRouter(tags=["conversations"])
CHAT_FAMILY = ("chat", "agent-chat", "advanced-chat", "agent")
_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


def _chat_app(app: App) -> None:
    if app.mode not in CHAT_FAMILY:
        raise NotChatApp()


async def _end_user(services: ServicesDep, app_id: str, user: str | None) -> str:
    end_user_id = await asyncio.to_thread(services.chat.find_end_user_id, app_id, user)
    if end_user_id is None:
        raise ConversationNotFound()
    return end_user_id


@router.get("/conversations", summary="Conversations of a user")
async def list_conversations(
    ctx: AppKey,
    services: ServicesDep,
    user: str | None = None,
    last_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] = "-updated_at",
) -> dict[str, Any]:
    _chat_app(ctx.app)
    end_user_id = await asyncio.to_thread(services.chat.find_end_user_id, ctx.app_id, user)
    if end_user_id is None:
        if last_id:
            raise ConversationNotFound("Last Conversation Not Exists.")
        return {"limit": limit, "has_more": False, "data": []}
    page = await asyncio.to_thread(
        services.chat.conversations.page, ctx.app_id, end_user_id, last_id or None, limit, sort_by
    )
    return {"limit": limit, "has_more": page.has_more, "data": [conversation(c) for c in page.items]}


@router.delete("/conversations/{conversation_id}", summary="Delete a conversation", response_model=None)
async def delete_conversation(
    conversation_id: str, request: Request, ctx: AppKey, services: ServicesDep, settings: SettingsDep
) -> Response:
    _chat_app(ctx.app)
    if "json" not in request.headers.get("content-type", ""):
        raise UnsupportedMediaType()  # Dify needs a JSON body here, `{}` will do
    raw = await request.body()
    try:
        body = DeleteBody.model_validate_json(raw) if raw.strip() else DeleteBody()
    except ValidationError as exc:  # read by hand (no body parameter): the same 400 envelope as FastAPI's
        raise RequestValidationError(exc.errors()) from None
    end_user_id = await _end_user(services, ctx.app_id, body.user)
    await asyncio.to_thread(services.chat.conversations.delete, ctx.app_id, end_user_id, conversation_id)
    if settings.delete_conversation_returns_200:
        return JSONResponse({"result": "success"})
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/name", summary="Rename a conversation")
async def rename_conversation(
    conversation_id: str, body: RenameBody, ctx: AppKey, services: ServicesDep
) -> dict[str, Any]:
    _chat_app(ctx.app)
    if not body.auto_generate and (body.name is None or not body.name.strip()):
        raise InvalidParam("name is required", params="name")
    row = await services.chat.rename(ctx.app, body.user or "", conversation_id, body.name, body.auto_generate)
    return conversation(row)


@router.get("/conversations/{conversation_id}/variables", summary="Conversation variables")
async def list_variables(
    conversation_id: str,
    ctx: AppKey,
    services: ServicesDep,
    user: str | None = None,
    last_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    variable_name: str | None = None,
) -> dict[str, Any]:
    _chat_app(ctx.app)
    if variable_name is not None and not _VARIABLE_NAME.match(variable_name):
        raise InvalidParam("variable_name must be 1-255 characters of letters, digits, _ . -", params="variable_name")
    end_user_id = await _end_user(services, ctx.app_id, user)
    page = await asyncio.to_thread(
        services.chat.conversations.list_variables,
        ctx.app_id,
        end_user_id,
        conversation_id,
        last_id or None,
        limit,
        variable_name,
    )
    return {"limit": limit, "has_more": page.has_more, "data": [variable(v) for v in page.items]}


@router.put("/conversations/{conversation_id}/variables/{variable_id}", summary="Update a conversation variable")
async def update_variable(
    conversation_id: str, variable_id: str, body: VariableBody, ctx: AppKey, services: ServicesDep
) -> dict[str, Any]:
    _chat_app(ctx.app)
    end_user_id = await _end_user(services, ctx.app_id, body.user)
    row = await asyncio.to_thread(
        services.chat.conversations.update_variable, ctx.app_id, end_user_id, conversation_id, variable_id, body.value
    )
    return variable(row)
