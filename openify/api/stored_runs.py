"""A run that another server process runs, streamed from what that process stores: when its events cannot be
relayed (no Redis, or no process answered: services/workflows/following.py).

Its recorder stores node executions every half second and the run's end before announcing it, so a stream
resumed through another process (`GET /workflow/{id}/events`) can follow the stored rows: node_started and
node_finished as node rows appear and end, then workflow_finished. Text chunks are not stored, so not sent; a
chatflow turn gets only its end. If the running process dies, the others fail the run within its lease, and
the stream ends with that.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from openify.api.workflow_events import EventFrames, StreamKeys, finished_data
from openify.engine.events import NodeFinished, NodeStarted, WorkflowEvent, WorkflowStarted
from openify.services.container import Services
from openify.services.workflows.finished_rows import finished_event
from openify.services.workflows.runs import unix
from openify.storage.tables import NodeExecution, WorkflowRun

POLL_S = 0.5  # how often the stored rows are read again


def _keys(row: WorkflowRun) -> StreamKeys:
    return StreamKeys(row.task_id, row.id, row.workflow_id, row.created_by, row.created_by_session_id)


def _node(n: NodeExecution) -> dict[str, Any]:
    """What a node row's node_started and node_finished share."""
    return {
        "id": n.id,
        "node_id": n.node_id,
        "node_type": n.node_type,
        "title": n.title,
        "index": n.index,
        "predecessor_node_id": n.predecessor_node_id,
        "iteration_id": n.iteration_id,
        "loop_id": n.loop_id,
    }


def _started(n: NodeExecution) -> NodeStarted:
    return NodeStarted(**_node(n), created_at=unix(n.created_at) or 0)


def _finished(n: NodeExecution) -> NodeFinished:
    created = unix(n.created_at) or 0
    return NodeFinished(
        **_node(n),
        inputs=n.inputs or {},
        process_data=n.process_data or {},
        outputs=n.outputs or {},
        status=n.status,  # type: ignore[arg-type]  # a finished row's status is a node status
        error=n.error,
        elapsed_time=n.elapsed_time,
        execution_metadata=n.execution_metadata or {},
        created_at=created,
        finished_at=unix(n.finished_at) or created,
    )


def finished_frame(row: WorkflowRun) -> dict[str, Any]:
    """A finished run resumed: one workflow_finished whose task_id is the run id (Dify's resume path)."""
    keys = StreamKeys(row.id, row.id, row.workflow_id, row.created_by, row.created_by_session_id)
    return {**keys.top("workflow_finished"), "data": finished_data(finished_event(row), keys)}


async def stored_progress(services: Services, app_id: str, run_id: str, replay: bool) -> AsyncIterator[bytes]:
    """The run's events from its stored rows: from its start with `replay`, else from now on."""
    runs = services.workflows
    row = await asyncio.to_thread(runs.get_run, app_id, run_id)
    frames = EventFrames(_keys(row))
    nodes = row.type == "workflow"  # a chatflow's node frames carry its message's keys, not stored here
    finished: dict[str, bool] = {}  # node execution id -> its node_finished is sent (or, without replay, past)
    seen: dict[str, str] = {}  # node execution id -> its status when last read: only changed rows are read again
    first = True
    while True:
        events: list[WorkflowEvent] = []
        if first and replay:
            inputs = json.loads(row.inputs) if row.inputs else {}
            events.append(
                WorkflowStarted(row.id, inputs if isinstance(inputs, dict) else {}, unix(row.created_at) or 0)
            )
        for n in await asyncio.to_thread(runs.changed_node_executions, run_id, dict(seen)) if nodes else ():
            seen[n.id] = n.status
            if n.status == "retry":
                continue
            done = n.status != "running"
            if n.id not in finished:
                if first and not replay:
                    finished[n.id] = done
                    continue
                events.append(_started(n))
                finished[n.id] = False
            if done and not finished[n.id]:
                events.append(_finished(n))
                finished[n.id] = True
        if row.status != "running":
            events.append(finished_event(row))
        if events:
            yield frames.encode(events)
        if row.status != "running":
            return
        first = False
        await asyncio.sleep(POLL_S)
        row = await asyncio.to_thread(runs.get_run, app_id, run_id)
