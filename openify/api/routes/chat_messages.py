"""POST /chat-messages (chat, agent-chat; advanced-chat via the chatflow service) and its stop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from openify.api import sse, workflow_events
from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.chat import ChatMessageRequest, UserBody, blocking_body, json_bytes, stream_payloads
from openify.engine.events import WorkflowFinished
from openify.errors import InvalidParam, NotChatApp
from openify.services.chat import TurnRequest
from openify.services.chat.service import CHAT_MODES
from openify.services.stops import StopKind, TaskStop
from openify.services.workflows.chatflows import AnnotatedTurn, TurnUsage

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
    out = blocking_body(gen, await gen.wait(), app.mode)
    return Response(json_bytes(out), media_type="application/json")


async def _chatflow(services: ServicesDep, ctx: AppKey, body: ChatMessageRequest, streaming: bool) -> Any:
    """Advanced-chat turns belong to the chatflow service; its typed run becomes Dify's chatflow stream or body."""
    chatflows = services.chatflows
    try:
        turn = await chatflows.start(ctx.app, _turn(body, streaming), workflow_id=body.workflow_id)
    except InvalidParam as exc:
        if not streaming:
            raise
        return sse.response(workflow_events.pre_run_error(exc.detail), initial_ping=True)
    if isinstance(turn, AnnotatedTurn):
        if streaming:
            return sse.response(workflow_events.annotated_payloads(turn), initial_ping=True)
        return workflow_events.annotated_blocking_body(turn)

    def usage(ev: WorkflowFinished) -> TurnUsage:
        return chatflows.usage(turn.live, ev)

    if streaming:
        # Chatflow streams open with a ping: Dify relays them from a worker.
        return sse.response(workflow_events.chatflow_payloads(turn, usage), initial_ping=True)
    return await workflow_events.chatflow_blocking_body(turn, usage)


@router.post("/chat-messages/{task_id}/stop", summary="Stop a chat generation")
async def stop_chat(task_id: str, body: UserBody, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    app = ctx.app
    if app.mode not in (*CHAT_MODES, "advanced-chat"):
        raise NotChatApp()
    kind: StopKind = "chatflow" if app.mode == "advanced-chat" else "chat"
    await services.stops.stop(TaskStop(kind, app.id, body.user, task_id))
    return {"result": "success"}
