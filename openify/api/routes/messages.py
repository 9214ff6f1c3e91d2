"""GET /messages (paging backwards from the newest) and GET /messages/{id}/suggested."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.chat_history import message
from openify.errors import InvalidParam, NotChatApp
from openify.services.chat.conversations import ConversationNotFound

router = APIRouter(tags=["messages"])
CHAT_FAMILY = ("chat", "agent-chat", "advanced-chat", "agent")


@router.get("/messages", summary="Messages of a conversation")
async def list_messages(
    ctx: AppKey,
    services: ServicesDep,
    conversation_id: str | None = None,
    user: str | None = None,
    first_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    if ctx.app.mode not in CHAT_FAMILY:
        raise NotChatApp()
    if conversation_id is None:
        raise InvalidParam("conversation_id is required", params="conversation_id")
    if not conversation_id:
        return {"limit": limit, "has_more": False, "data": []}
    end_user_id = await asyncio.to_thread(services.chat.find_end_user_id, ctx.app_id, user)
    if end_user_id is None:
        raise ConversationNotFound()
    page = await asyncio.to_thread(
        services.chat.messages.page, ctx.app_id, end_user_id, conversation_id, first_id or None, limit
    )
    return {
        "limit": limit,
        "has_more": page.has_more,
        "data": [message(m, r, services.chat.files.url) for m, r in page.items],
    }


@router.get("/messages/{message_id}/suggested", summary="Suggested follow-up questions")
async def suggested(
    message_id: str, ctx: AppKey, services: ServicesDep, user: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    if not user:
        raise InvalidParam("user is required", params="user")
    data = await services.chat.suggested(ctx.app, user, message_id)
    return {"result": "success", "data": data}
