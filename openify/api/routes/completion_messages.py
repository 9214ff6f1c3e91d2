"""POST /completion-messages (completion apps) and its stop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from openify.api import sse
from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.chat import CompletionMessageRequest, UserBody, blocking_body, json_bytes, stream_payloads
from openify.errors import AppUnavailable
from openify.services.chat import TurnRequest
from openify.services.stops import TaskStop

router = APIRouter(tags=["completion"])


@router.post("/completion-messages", summary="Send a completion message", response_model=None)
async def completion_messages(body: CompletionMessageRequest, ctx: AppKey, services: ServicesDep) -> Any:
    app = ctx.app
    if app.mode != "completion":
        raise AppUnavailable()  # Dify answers app_unavailable here, not not_completion_app
    streaming = body.response_mode == "streaming"
    turn = TurnRequest(
        user=body.user,
        inputs=body.inputs,
        query=body.query,
        files=[f.model_dump() for f in body.files or []],
        auto_generate_name=False,
        streaming=streaming,
    )
    gen = await services.chat.start(app, turn)
    if streaming:
        return sse.response(stream_payloads(gen))
    out = blocking_body(gen, await gen.wait(), app.mode)
    return Response(json_bytes(out), media_type="application/json")


@router.post("/completion-messages/{task_id}/stop", summary="Stop a completion generation")
async def stop_completion(task_id: str, body: UserBody, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    if ctx.app.mode != "completion":
        raise AppUnavailable()
    await services.stops.stop(TaskStop("chat", ctx.app.id, body.user, task_id))
    return {"result": "success"}
