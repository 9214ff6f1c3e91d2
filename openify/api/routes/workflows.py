"""Workflow runs: /workflows/run, /workflows/{workflow_id}/run, run detail, stop, logs, /workflow/{id}/events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field
from starlette.responses import Response

from openify.api import sse
from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.bodies import JsonBody
from openify.api.stored_runs import finished_frame, stored_progress
from openify.api.workflow_events import (
    STREAM_COALESCE_S,
    EventFrames,
    StreamKeys,
    blocking_data,
    chatflow_payloads,
    pre_run_error,
)
from openify.engine.events import WorkflowFinished
from openify.errors import InvalidParam, NotFound, NotWorkflowApp
from openify.services.container import Services
from openify.services.stops import TaskStop
from openify.services.workflows.chatflows import ChatflowTurn, TurnUsage
from openify.services.workflows.finished_rows import run_outputs
from openify.services.workflows.following import Followed
from openify.services.workflows.live import LiveRun
from openify.services.workflows.runs import LogFilters, unix
from openify.storage.tables import App, WorkflowRun

router = APIRouter(tags=["workflows"])

_USER_REQUIRED = "Arg user must be provided."


def _user_text(value: Any) -> Any:
    # Dify str()-s a non-string `user`; a missing or empty one is refused by the route.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


User = Annotated[str | None, BeforeValidator(_user_text)]


class WorkflowRunRequest(JsonBody):
    inputs: dict[str, Any]
    user: User = None
    response_mode: Literal["streaming", "blocking"] | None = None
    files: list[dict[str, Any]] | None = None


class StopRequest(JsonBody):
    user: User = None


def _keys(live: LiveRun) -> StreamKeys:
    return StreamKeys(
        task_id=live.task_id,
        workflow_run_id=live.run_id,
        workflow_id=live.workflow_id,
        end_user_id=live.end_user_id,
        session_id=live.session_id,
    )


async def _relay(live: LiveRun, keys: StreamKeys, replay: bool = True) -> AsyncIterator[bytes]:
    frames = EventFrames(keys)
    async for batch in live.batches(replay, coalesce_s=STREAM_COALESCE_S):
        chunk = frames.encode(batch)
        if chunk:
            yield chunk


async def _run(app: App, body: WorkflowRunRequest, services: Services, workflow_id: str | None) -> Response | Any:
    if app.mode != "workflow":
        raise NotWorkflowApp()
    if not body.user:
        raise InvalidParam(_USER_REQUIRED)
    streaming = body.response_mode == "streaming"
    if streaming:
        # A bad version id is an HTTP error; everything after it happens inside the stream, whose first byte
        # (Dify's ping) goes out at once.
        await services.workflows.aversion_of(app, workflow_id)
        return sse.response(_started_stream(app, body, services, workflow_id), initial_ping=True)
    end_user = await services.workflows.end_user(app.id, body.user)
    live = await services.workflows.start(app, end_user, body.inputs, files=body.files or [], workflow_id=workflow_id)
    finished = await live.wait()
    return {"task_id": live.task_id, "workflow_run_id": live.run_id, "data": blocking_data(finished, _keys(live))}


async def _started_stream(
    app: App, body: WorkflowRunRequest, services: Services, workflow_id: str | None
) -> AsyncIterator[dict[str, Any] | bytes]:
    assert body.user is not None  # noqa: S101 - checked by the route
    end_user = await services.workflows.end_user(app.id, body.user)
    start = services.workflows.start(app, end_user, body.inputs, files=body.files or [], workflow_id=workflow_id)
    try:
        # Shielded: a client that hangs up now must not leave a stored run that never started.
        live = await asyncio.shield(asyncio.ensure_future(start))
    except InvalidParam as exc:
        async for p in pre_run_error(exc.detail):
            yield p
        return
    async for chunk in _relay(live, _keys(live)):
        yield chunk


@router.post("/workflows/run", summary="Run the app's published workflow")
async def run_workflow(body: WorkflowRunRequest, ctx: AppKey, services: ServicesDep) -> Any:
    return await _run(ctx.app, body, services, None)


@router.post("/workflows/{workflow_id}/run", summary="Run a published workflow version")
async def run_workflow_version(workflow_id: str, body: WorkflowRunRequest, ctx: AppKey, services: ServicesDep) -> Any:
    if ctx.app.mode != "workflow":
        raise NotWorkflowApp()
    return await _run(ctx.app, body, services, workflow_id)


@router.post("/workflows/tasks/{task_id}/stop", summary="Stop a running workflow task")
async def stop_workflow_task(task_id: str, body: StopRequest, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    if ctx.app.mode != "workflow":
        raise NotWorkflowApp()
    if not body.user:
        raise InvalidParam(_USER_REQUIRED)
    await services.stops.stop(TaskStop("workflow", ctx.app.id, body.user, task_id))
    return {"result": "success"}


@router.get("/workflows/run/{workflow_run_id}", summary="A workflow run's status and result")
def get_workflow_run(workflow_run_id: str, ctx: AppKey, services: ServicesDep) -> dict[str, Any]:
    if ctx.app.mode not in ("workflow", "advanced-chat"):
        raise NotWorkflowApp()
    row = services.workflows.get_run(ctx.app_id, workflow_run_id)
    return {
        "id": row.id,
        "workflow_id": row.workflow_id,
        "status": row.status,
        "inputs": row.inputs,
        "outputs": run_outputs(row),
        "error": row.error,
        "total_steps": row.total_steps,
        "total_tokens": row.total_tokens,
        "created_at": unix(row.created_at),
        "finished_at": unix(row.finished_at),
        "elapsed_time": row.elapsed_time,
    }


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@router.get("/workflows/logs", summary="Workflow runs of the app, newest first")
def get_workflow_logs(
    ctx: AppKey,
    services: ServicesDep,
    keyword: str | None = None,
    status: Literal["succeeded", "failed", "stopped"] | None = None,
    page: Annotated[int, Query(ge=1, le=99999)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    created_at__before: datetime | None = None,
    created_at__after: datetime | None = None,
    created_by_end_user_session_id: str | None = None,
    created_by_account: str | None = None,
) -> dict[str, Any]:
    if ctx.app.mode not in ("workflow", "advanced-chat"):
        raise NotWorkflowApp()
    filters = LogFilters(
        keyword=keyword or None,
        status=status,
        created_at_before=_naive_utc(created_at__before),
        created_at_after=_naive_utc(created_at__after),
        session_id=created_by_end_user_session_id or None,
        created_by_account=created_by_account or None,
    )
    total, entries = services.workflows.logs(ctx.app_id, filters, page, limit)
    data: list[dict[str, Any]] = []
    for e in entries:
        r, u = e.run, e.end_user
        data.append(
            {
                "id": r.id,
                "workflow_run": {
                    "id": r.id,
                    "version": r.version,
                    "status": r.status,
                    "triggered_from": r.triggered_from,
                    "error": r.error,
                    "elapsed_time": r.elapsed_time,
                    "total_tokens": r.total_tokens,
                    "total_steps": r.total_steps,
                    "created_at": unix(r.created_at),
                    "finished_at": unix(r.finished_at),
                    "exceptions_count": r.exceptions_count,
                },
                "details": None,
                "created_from": r.created_from,
                "created_by_role": r.created_by_role,
                "created_by_account": None,
                "created_by_end_user": (
                    {"id": u.id, "type": u.type, "is_anonymous": u.is_anonymous, "session_id": u.session_id}
                    if u
                    else None
                ),
                "created_at": unix(r.created_at),
            }
        )
    return {"page": page, "limit": limit, "total": total, "has_more": total > page * limit, "data": data}


class _EventsQuery(BaseModel):
    user: str | None = None
    include_state_snapshot: bool = False
    continue_on_pause: bool = Field(default=False, description="Accepted; Openify workflows never pause.")


async def _finished_only(row: WorkflowRun) -> AsyncIterator[dict[str, Any]]:
    yield finished_frame(row)


@router.get("/workflow/{workflow_run_id}/events", summary="Resume a workflow run's event stream")
async def get_workflow_events(
    workflow_run_id: str, ctx: AppKey, services: ServicesDep, q: Annotated[_EventsQuery, Query()]
) -> Response:
    if ctx.app.mode not in ("workflow", "advanced-chat"):
        raise NotWorkflowApp()
    if not q.user:
        raise InvalidParam(_USER_REQUIRED)
    end_user = await asyncio.to_thread(services.end_users.find, ctx.app_id, q.user)
    try:
        row = await asyncio.to_thread(services.workflows.get_run, ctx.app_id, workflow_run_id)
    except NotFound:
        raise NotFound("Workflow run not found.") from None
    if end_user is None or row.created_by != end_user.id:
        raise NotFound("Workflow run not found.")
    live = services.workflows.live(workflow_run_id)
    if live is None and row.status == "running":  # running in another server process
        followed = await services.following.follow(workflow_run_id)
        if followed is None:  # no Redis, or no answer: follow its stored rows
            stored = stored_progress(services, ctx.app_id, workflow_run_id, replay=q.include_state_snapshot)
            return sse.response(stored, initial_ping=True)
        return sse.response(_closing(_live_stream(followed.live, services, q), followed), initial_ping=True)
    if live is None or live.done:
        row = await asyncio.to_thread(services.workflows.get_run, ctx.app_id, workflow_run_id)
        return sse.response(_finished_only(row))
    return sse.response(_live_stream(live, services, q), initial_ping=True)


def _live_stream(live: LiveRun, services: Services, q: _EventsQuery) -> AsyncIterator[dict[str, Any] | bytes]:
    if live.message_id is not None and live.conversation_id is not None:  # a chatflow turn: its own end order
        turn = ChatflowTurn(live, live.conversation_id, live.message_id, live.message_created_at)

        def usage(ev: WorkflowFinished) -> TurnUsage:
            return services.chatflows.usage(live, ev)

        return chatflow_payloads(turn, usage, replay=q.include_state_snapshot)
    return _relay(live, _keys(live), replay=q.include_state_snapshot)


async def _closing(
    stream: AsyncIterator[dict[str, Any] | bytes], followed: Followed
) -> AsyncIterator[dict[str, Any] | bytes]:
    """`stream`, then the end of following its run, however the stream ends (a client that leaves included)."""
    try:
        async for item in stream:
            yield item
    finally:
        await followed.aclose()
