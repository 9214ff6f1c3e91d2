"""The run service: stores as it goes, and recovers runs a dead process left running."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from openify.engine.events import NodeStarted
from openify.services.container import Services
from openify.services.instances import INSTANCE_ID
from openify.storage.tables import NodeExecution, WorkflowRun
from tests.api.workflow_kit import SLOW
from tests.conftest import import_app


async def test_nodes_are_stored_while_the_run_goes_on(services: Services) -> None:
    kit = import_app(services, SLOW)
    app = services.apps.get(kit.app_id)
    user = await services.workflows.end_user(app.id, "u1")
    live = await services.workflows.start(app, user, {})
    async for batch in live.batches():
        if any(isinstance(ev, NodeStarted) and ev.node_id == "nap" for ev in batch):
            break
    deadline = time.monotonic() + 1.5  # the nap lasts 2 s; the recorder flushes every 0.5 s
    stored: list[tuple[str, str]] = []
    while time.monotonic() < deadline and ("start", "succeeded") not in stored:
        await asyncio.sleep(0.1)
        with services.db.session() as s:
            rows = s.scalars(select(NodeExecution).where(NodeExecution.run_id == live.run_id)).all()
            stored = [(r.node_id, r.status) for r in rows]
    assert not live.done
    assert ("start", "succeeded") in stored
    with services.db.session() as s:
        run = s.get(WorkflowRun, live.run_id)
        assert run is not None and run.status == "running"
    finished = await live.wait()
    assert finished.status == "succeeded"
    with services.db.session() as s:
        rows = s.scalars(select(NodeExecution).where(NodeExecution.run_id == live.run_id)).all()
        assert sorted((r.node_id, r.status) for r in rows) == [
            ("end", "succeeded"),
            ("nap", "succeeded"),
            ("start", "succeeded"),
        ]


async def test_recover_fails_what_a_dead_process_left_running(services: Services) -> None:
    kit = import_app(services, SLOW)
    app = services.apps.get(kit.app_id)
    user = await services.workflows.end_user(app.id, "u1")
    live = await services.workflows.start(app, user, {})
    async for batch in live.batches():
        if any(isinstance(ev, NodeStarted) and ev.node_id == "nap" for ev in batch):
            break
    await asyncio.sleep(0.7)  # let the recorder store the running node
    assert services.workflows.recover([INSTANCE_ID]) == 0  # its process is alive: another's start leaves it
    # What a restart sees: the rows as a killed process left them.
    assert services.workflows.recover() == 1
    with services.db.session() as s:
        run = s.get(WorkflowRun, live.run_id)
        assert run is not None and (run.status, run.error) == ("failed", "The server stopped before the run finished.")
        nodes = {
            r.node_id: r.status for r in s.scalars(select(NodeExecution).where(NodeExecution.run_id == live.run_id))
        }
    assert nodes.get("nap") == "failed"
    assert services.workflows.recover() == 0
    live.stop()
    await live.wait()


async def test_a_follower_reads_only_node_rows_that_changed(services: Services) -> None:
    """The stored-run follower polls `changed_node_executions`: rows it has seen in their status are not loaded
    again; a new row, or one whose status changed, is."""
    kit = import_app(services, SLOW)
    app = services.apps.get(kit.app_id)
    user = await services.workflows.end_user(app.id, "u1")
    live = await services.workflows.start(app, user, {})
    await live.wait()
    runs = services.workflows
    first = await asyncio.to_thread(runs.changed_node_executions, live.run_id, {})
    assert sorted(n.node_id for n in first) == ["end", "nap", "start"]
    seen = {n.id: n.status for n in first}
    assert await asyncio.to_thread(runs.changed_node_executions, live.run_id, seen) == []
    nap = next(n for n in first if n.node_id == "nap")
    again = await asyncio.to_thread(runs.changed_node_executions, live.run_id, {**seen, nap.id: "running"})
    assert [n.node_id for n in again] == ["nap"]
