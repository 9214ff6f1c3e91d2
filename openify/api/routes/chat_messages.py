"""POST /chat-messages (chat, agent-chat; advanced-chat via the chatflow service) and its stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from openify.api import sse
from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.chat import ChatMessageRequest, UserBody, blocking_body, stream_payloads
from openify.errors import AppUnavailable, InvalidParam, NotChatApp
from openify.services.chat import TurnRequest
from openify.services.chat.service import CHAT_MODES

router = APIRouter(tags=["chat"])


def _turn(body: ChatMessageRequest, streaming: bool) -> TurnRequest:
    return TurnRequest(
        user=body.user,
        inputs=body.inputs,
        query=body.query,
        conversation_id=body.conversation_id,
        files=[f.model_dump() for f in body.files or []],
        auto_generate_name=body.auto_generate_name,
        streaming=streaming,
    )


@router.post("/chat-messages", summary="Send a chat message", response_model=None)
async def chat_messages(body: ChatMessageRequest, ctx: AppKey, services: ServicesDep) -> Any:
    app = ctx.app
    streaming = body.response_mode == "streaming"
    if app.mode == "advanced-chat":
        return await _chatflow(services, ctx, body, streaming)
    if app.mode not in CHAT_MODES:
        raise NotChatApp()
    if app.mode == "agent-chat" and not streaming:
        raise InvalidParam("Agent Chat App does not support blocking mode")
    gen = await services.chat.start(app, _turn(body, streaming))
    if streaming:
        return sse.response(stream_payloads(gen))
    return blocking_body(gen, await gen.wait(), app.mode)


async def _chatflow(services: ServicesDep, ctx: AppKey, body: ChatMessageRequest, streaming: bool) -> Any:
    """Advanced-chat turns belong to the chatflow service: a Mapping is the blocking body, an async iterator
    the stream's payloads (sent after an immediate ping, as Dify relays chatflows)."""
    chatflows = getattr(services, "chatflows", None)
    if chatflows is None:
        raise AppUnavailable()
    result = await chatflows.chat(ctx.app, _turn(body, streaming), workflow_id=body.workflow_id)
    if isinstance(result, Response | Mapping):
        return result
    stream: AsyncIterator[Mapping[str, Any]] = result
    return sse.response(stream, initial_ping=True)


@router.post("/chat-messages/{task_id}/stop", summary="Stop a chat generation")
async def stop_chat(task_id: str, body: UserBody, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    app = ctx.app
    if app.mode not in (*CHAT_MODES, "advanced-chat"):
        raise NotChatApp()
    if app.mode == "advanced-chat":
        chatflows = getattr(services, "chatflows", None)
        if chatflows is not None:
            await chatflows.stop(app, body.user, task_id)
        return {"result": "success"}
    services.chat.stop(app, body.user, task_id)
    return {"result": "success"}
