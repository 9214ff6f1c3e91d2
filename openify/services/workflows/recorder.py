"""Stores a run as it goes: the run row first, node executions in batches, the final state before it is announced.

Writes go through the BatchWriter (a worker thread, one transaction shared by every live run) and one at a
time per run, so the event loop never waits on the database and a run's rows land in order.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Table, TypeDecorator, bindparam, column, insert, table, update
from sqlalchemy.engine import Connection, Dialect

from openify.engine.events import (
    IterationCompleted,
    IterationStarted,
    LoopCompleted,
    LoopStarted,
    NodeFinished,
    NodeRetry,
    NodeStarted,
    WorkflowEvent,
    WorkflowFinished,
)
from openify.services.workflows.writer import BatchWriter
from openify.storage.tables import NodeExecution, WorkflowRun
from openify.storage.tables.base import utcnow

FLUSH_INTERVAL_S = 0.5
FLUSH_ROWS = 1000


class _EncodedJSON(TypeDecorator[str]):
    """A JSON column written from JSON text the recorder has already encoded (orjson, on the event loop): the
    writer thread, which holds the GIL against running workflows, then does no JSON work for it."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:  # noqa: ARG002 - the signature is SQLAlchemy's
        return None  # the value is JSON text already; PostgreSQL still gets its ::JSON cast from the impl


_DECLARED: Table = NodeExecution.__table__  # type: ignore[assignment]  # declared tables are Tables
_NODE = table(
    _DECLARED.name,
    *(column(c.name, _EncodedJSON() if isinstance(c.type, JSON) else c.type) for c in _DECLARED.columns),
)
_RUN: Table = WorkflowRun.__table__  # type: ignore[assignment]
_COLUMNS = [c.name for c in _DECLARED.columns]


def dumps(value: Any) -> str:
    """JSON text as Dify stores it (ASCII-escaped), so keyword search matches Dify's."""
    return json.dumps(value, default=str)


def _ts(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None) if seconds is not None else None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def _jsonable(value: Any) -> str | None:
    """Event values (Mappings, tuples, Decimals) as the JSON text of a JSON column; orjson, since this runs for
    every node."""
    if value is None:
        return None
    return orjson.dumps(value, default=_plain, option=orjson.OPT_NON_STR_KEYS).decode()


def _insert_run(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_RUN), [values])


class RunRecorder:
    """Buffers one run's node executions and writes them out; `finish()` writes the final state."""

    def __init__(self, writer: BatchWriter, run_id: str, app_id: str) -> None:
        self._writer, self.run_id, self.app_id = writer, run_id, app_id
        self._pending: dict[str, dict[str, Any]] = {}
        self._inserted: set[str] = set()
        self._containers: dict[str, str] = {}  # container node id -> its execution id
        self._lock = asyncio.Lock()
        self._last_flush = time.monotonic()
        self._flushing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._run_row: asyncio.Task[None] | None = None

    def on_event(self, ev: WorkflowEvent) -> None:
        cls = type(ev)
        if cls is NodeStarted:
            assert isinstance(ev, NodeStarted)  # noqa: S101 - narrowing for mypy
            self._pending[ev.id] = self._row(ev.id, ev, status="running", created=ev.created_at)
        elif cls is NodeFinished:
            assert isinstance(ev, NodeFinished)  # noqa: S101
            row = self._pending.get(ev.id) or self._row(ev.id, ev, status=ev.status, created=ev.created_at)
            row.update(
                status=ev.status,
                inputs=_jsonable(ev.inputs),
                process_data=_jsonable(ev.process_data),
                outputs=_jsonable(ev.outputs),
                error=ev.error,
                elapsed_time=ev.elapsed_time,
                total_tokens=int(ev.execution_metadata.get("total_tokens") or 0),
                execution_metadata=_jsonable(ev.execution_metadata),
                finished_at=_ts(ev.finished_at),
            )
            self._pending[ev.id] = row
        elif cls is NodeRetry:
            assert isinstance(ev, NodeRetry)  # noqa: S101
            rid = str(uuid.uuid4())  # a retry is a row of its own, as in Dify
            row = self._row(rid, ev, status="retry", created=ev.created_at)
            row.update(error=ev.error, elapsed_time=ev.elapsed_time, finished_at=_ts(ev.finished_at))
            self._pending[rid] = row
        elif cls is IterationStarted or cls is LoopStarted:
            assert isinstance(ev, IterationStarted | LoopStarted)  # noqa: S101
            eid = self._containers[ev.node_id] = str(uuid.uuid4())
            row = self._row(eid, ev, status="running", created=ev.created_at)
            row["inputs"] = _jsonable(ev.inputs)
            self._pending[eid] = row
        elif cls is IterationCompleted or cls is LoopCompleted:
            assert isinstance(ev, IterationCompleted | LoopCompleted)  # noqa: S101
            eid = self._containers.pop(ev.node_id, "") or str(uuid.uuid4())
            row = self._pending.get(eid) or self._row(eid, ev, status=ev.status, created=ev.created_at)
            row.update(
                status=ev.status,
                inputs=_jsonable(ev.inputs),
                outputs=_jsonable(ev.outputs),
                error=ev.error,
                elapsed_time=ev.elapsed_time,
                total_tokens=ev.total_tokens,
                execution_metadata=_jsonable(ev.execution_metadata),
                finished_at=_ts(ev.finished_at),
            )
            self._pending[eid] = row

    def _row(self, exec_id: str, ev: Any, *, status: str, created: int) -> dict[str, Any]:
        return {
            "id": exec_id,
            "run_id": self.run_id,
            "app_id": self.app_id,
            "index": getattr(ev, "index", 0),
            "node_id": ev.node_id,
            "node_type": ev.node_type,
            "title": ev.title or "",
            "predecessor_node_id": getattr(ev, "predecessor_node_id", None),
            "iteration_id": getattr(ev, "iteration_id", None),
            "loop_id": getattr(ev, "loop_id", None),
            "status": status,
            "inputs": None,
            "process_data": None,
            "outputs": None,
            "error": None,
            "elapsed_time": 0.0,
            "total_tokens": 0,
            "execution_metadata": None,
            "created_at": _ts(created),
            "finished_at": None,
        }

    def maybe_flush(self) -> None:
        """Start a background write when enough has piled up, or arm one for later; never waits.

        The timer matters when a node runs long: what finished before it is stored meanwhile."""
        if not self._pending or (self._flushing is not None and not self._flushing.done()):
            return
        due = self._last_flush + FLUSH_INTERVAL_S - time.monotonic()
        if len(self._pending) >= FLUSH_ROWS or due <= 0:
            self._flushing = asyncio.create_task(self.flush())
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closed:
            self.maybe_flush()

    def insert_run(self, row: WorkflowRun) -> None:
        """Store the run row in the background; every later write waits for it."""
        values = {c.name: getattr(row, c.name) for c in _RUN.columns}
        # One Core statement: the ORM's unit of work costs more than the write itself.
        self._run_row = asyncio.create_task(self._writer.write(lambda conn: _insert_run(conn, values)))

    async def run_row_stored(self) -> None:
        if self._run_row is not None:
            await self._run_row

    async def flush(self) -> None:
        await self.run_row_stored()
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
            new = [r for k, r in batch.items() if k not in self._inserted]
            old = [r for k, r in batch.items() if k in self._inserted]
            await self._writer.write(lambda conn: self._write(conn, new, old))
            self._inserted.update(r["id"] for r in new)

    async def finish(self, ev: WorkflowFinished) -> None:
        """Write every pending node and the run's final state in one transaction; returns once stored."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        await self.run_row_stored()
        if self._flushing is not None:
            await self._flushing
        values = {
            "status": ev.status,
            "outputs": dumps(dict(ev.outputs)),
            "error": ev.error,
            "elapsed_time": ev.elapsed_time,
            "total_tokens": ev.total_tokens,
            "total_steps": ev.total_steps,
            "exceptions_count": ev.exceptions_count,
            "finished_at": _ts(ev.finished_at) or utcnow(),
        }
        async with self._lock:
            batch, self._pending = self._pending, {}
            new = [r for k, r in batch.items() if k not in self._inserted]
            old = [r for k, r in batch.items() if k in self._inserted]
            await self._writer.write(lambda conn: self._write(conn, new, old, values))
            self._inserted.update(r["id"] for r in new)

    def _write(
        self, conn: Connection, new: list[dict[str, Any]], old: list[dict[str, Any]], run: dict[str, Any] | None = None
    ) -> None:
        if new:
            conn.execute(insert(_NODE), new)
        if old:
            values: dict[str, Any] = {c: bindparam(f"v_{c}") for c in _COLUMNS if c != "id"}
            stmt = update(_NODE).where(_NODE.c.id == bindparam("v_key")).values(values)
            rows = [{"v_key": r["id"], **{f"v_{c}": r[c] for c in _COLUMNS if c != "id"}} for r in old]
            conn.execute(stmt, rows)
        if run is not None:
            conn.execute(update(_RUN).where(_RUN.c.id == self.run_id).values(run))
