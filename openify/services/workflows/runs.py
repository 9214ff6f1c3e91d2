"""The run service: starts a workflow run as a task that stores as it goes and relays its events; stop; reads.

A run outlives the request that started it: the HTTP stream only subscribes to the task's relay, so a client
that disconnects loses nothing, and `GET /workflow/{id}/events` can attach later. Runs found `running` at
start-up belonged to a process that died; `recover()` marks them failed.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update

from openify.engine.events import WorkflowFinished
from openify.engine.graph import Graph, parse_graph
from openify.engine.node import NodeError
from openify.engine.nodes.start import check_input
from openify.engine.ports import Ports
from openify.engine.runner import RunLimits, SystemInputs, WorkflowRunner
from openify.engine.variables import contains_file
from openify.errors import InvalidParam, NotFound
from openify.providers.base import ModelResolver
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits
from openify.security.file_links import FileLinks
from openify.security.sandbox import Sandbox
from openify.security.ssrf import GuardedHttpClient
from openify.services.end_users import EndUserService
from openify.services.instances import INSTANCE_ID
from openify.services.workflows.files import WorkflowFiles
from openify.services.workflows.live import LiveRun
from openify.services.workflows.ports import WorkflowPorts
from openify.services.workflows.recorder import RunRecorder, dumps
from openify.services.workflows.versions import WorkflowVersions
from openify.services.workflows.writer import BatchWriter
from openify.settings import Settings
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import App, EndUser, NodeExecution, WorkflowRun, WorkflowVersion
from openify.storage.tables.base import utcnow

log = logging.getLogger("openify.workflows")

PortsFactory = Callable[[App, Graph], Ports]
OnFinish = Callable[[LiveRun, WorkflowFinished], Awaitable[None]]
_RUNNER_CACHE = 256
KILLED_ERROR = "The server stopped before the run finished."


def unix(value: datetime | None) -> int | None:
    return calendar.timegm(value.timetuple()) if value is not None else None


@dataclass(frozen=True, slots=True)
class LogFilters:
    keyword: str | None = None
    status: str | None = None
    created_at_before: datetime | None = None
    created_at_after: datetime | None = None
    session_id: str | None = None
    created_by_account: str | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    run: WorkflowRun
    end_user: EndUser | None


class WorkflowRunService:
    def __init__(
        self,
        db: Database,
        registries: Registries,
        versions: WorkflowVersions,
        ports: PortsFactory,
        end_users: EndUserService,
        files: WorkflowFiles,
        limits: RunLimits | None = None,
        file_upload_limit: int = 10,
    ) -> None:
        self._db, self._registries, self.versions, self._ports = db, registries, versions, ports
        self.file_upload_limit = file_upload_limit
        self._end_users, self.files = end_users, files
        self._writer = BatchWriter(db)
        self.limits = limits or RunLimits()
        self._runners: OrderedDict[str, WorkflowRunner] = OrderedDict()
        self._by_run: dict[str, LiveRun] = {}
        self._by_task: dict[str, LiveRun] = {}
        self._end_users_seen: dict[tuple[str, str], EndUser] = {}

    # --- starting ------------------------------------------------------------------------------
    async def end_user(self, app_id: str, user: str) -> EndUser:
        """The end user of `user`, created on first sight; cached, since end users never change."""
        key = (app_id, user)
        found = self._end_users_seen.get(key)
        if found is None:
            found = await asyncio.to_thread(self._end_users.get_or_create, app_id, user)
            if len(self._end_users_seen) > 100_000:
                self._end_users_seen.clear()
            self._end_users_seen[key] = found
        return found

    def runner_for(self, app: App, version: WorkflowVersion) -> WorkflowRunner:
        """The engine runner of a version, built once and kept (graph parsing and node setup are not free)."""
        runner = self._runners.get(version.id)
        if runner is None:
            dsl = {"app": {"mode": app.mode}, "workflow": version.workflow}
            graph = parse_graph(dsl)
            runner = WorkflowRunner(graph, self._registries, self._ports(app, graph), self.limits)
            self._runners[version.id] = runner
            if len(self._runners) > _RUNNER_CACHE:
                self._runners.popitem(last=False)
        else:
            self._runners.move_to_end(version.id)
        return runner

    def version_of(self, app: App, workflow_id: str | None) -> WorkflowVersion:
        return self.versions.get(app, workflow_id) if workflow_id is not None else self.versions.published(app)

    async def aversion_of(self, app: App, workflow_id: str | None) -> WorkflowVersion:
        """`version_of` without a thread hop when the version is already known (the common case)."""
        found = self.versions.find_cached(app, workflow_id)
        return found if found is not None else await asyncio.to_thread(self.version_of, app, workflow_id)

    def prepare_inputs(self, runner: WorkflowRunner, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Check `inputs` against the Start node's form as Dify does before a run; a bad value is invalid_param."""
        if not isinstance(inputs, Mapping):
            raise InvalidParam("inputs must be a JSON object")
        start = runner.graph.nodes[runner.graph.root_id]
        out: dict[str, Any] = {}
        for var in start.data.get("variables") or []:
            if isinstance(var, Mapping) and var.get("variable"):
                name = str(var["variable"])
                try:
                    value = check_input(var, inputs.get(name))
                except NodeError as exc:
                    raise InvalidParam(str(exc)) from None
                if not _is_file_input(var) and contains_file(value):
                    # A File value names a stored file directly; only the server makes them (file inputs are
                    # checked mappings, resolved below). Dify's file factory answers "Invalid upload file".
                    raise InvalidParam(f"{name}: Invalid upload file", params=name)
                if value is not None or name in inputs:
                    out[name] = value
        return out

    def check_file_count(self, runner: WorkflowRunner, inputs: Mapping[str, Any], files: Sequence[Any]) -> None:
        """OPENIFY_UPLOAD__WORKFLOW_FILE_UPLOAD_LIMIT: the files one run may take, `files` and file inputs together.
        Dify's file factory refuses more with ValueError, a 400 invalid_param of this message."""
        count = len(files) if isinstance(files, Sequence) else 0
        for var in runner.graph.nodes[runner.graph.root_id].data.get("variables") or []:
            value = inputs.get(str(var.get("variable"))) if _is_file_input(var) else None
            count += len(value) if isinstance(value, list) else int(value is not None)
        if count > self.file_upload_limit:
            raise InvalidParam(f"Number of files exceeds the maximum limit {self.file_upload_limit}", params="files")

    async def start(
        self,
        app: App,
        end_user: EndUser,
        inputs: Mapping[str, Any],
        *,
        files: Sequence[Mapping[str, Any]] = (),
        workflow_id: str | None = None,
        query: str = "",
        conversation_id: str | None = None,
        message_id: str | None = None,
        message_created_at: int = 0,
        dialogue_count: int = 1,
        on_finish: OnFinish | None = None,
        run_id: str | None = None,
        prepared_inputs: dict[str, Any] | None = None,
    ) -> LiveRun:
        """Validate, store the run row, and start the run's task. Raises InvalidParam before anything is stored."""
        version = await self.aversion_of(app, workflow_id)
        runner = self.runner_for(app, version)
        prepared = prepared_inputs if prepared_inputs is not None else self.prepare_inputs(runner, inputs)
        self.check_file_count(runner, prepared, files)
        if files or any(
            _is_file_input(v) for v in runner.graph.nodes[runner.graph.root_id].data.get("variables") or []
        ):
            files, prepared = await asyncio.to_thread(self._with_files, app.id, end_user.id, runner, prepared, files)
        chat = app.mode == "advanced-chat"
        run_id, task_id = run_id or str(uuid.uuid4()), str(uuid.uuid4())
        system = SystemInputs(
            user_id=end_user.session_id,
            files=list(files),
            query=query,
            conversation_id=conversation_id or "",
            dialogue_count=dialogue_count,
            app_id=app.id,
            workflow_id=version.id,
        )
        sys_inputs: dict[str, Any] = {
            "sys.files": list(files),
            "sys.user_id": end_user.session_id,
            "sys.app_id": app.id,
            "sys.workflow_id": version.id,
            "sys.workflow_run_id": run_id,
        }
        if chat:
            sys_inputs.update({"sys.query": query, "sys.dialogue_count": dialogue_count})
            sys_inputs["sys.conversation_id"] = conversation_id or ""
        else:
            sys_inputs["sys.timestamp"] = int(time.time())
        run_inputs = {**prepared, **sys_inputs}
        row = WorkflowRun(
            id=run_id,
            app_id=app.id,
            workflow_id=version.id,
            version=version.version,
            type="chat" if chat else "workflow",
            task_id=task_id,
            triggered_from="app-run",
            status="running",
            inputs=dumps(run_inputs),
            created_by=end_user.id,
            created_by_session_id=end_user.session_id,
            conversation_id=conversation_id,
            message_id=message_id,
            # Every column is set here: the row is written with one Core insert, and readers racing that
            # write see this object.
            outputs=None,
            error=None,
            elapsed_time=0.0,
            total_tokens=0,
            total_steps=0,
            exceptions_count=0,
            created_by_role="end_user",
            created_from="service-api",
            created_at=utcnow(),
            finished_at=None,
            instance_id=INSTANCE_ID,
        )
        run = runner.start(run_inputs, system, run_id=run_id)
        live = LiveRun(
            run_id=run_id,
            task_id=task_id,
            app_id=app.id,
            workflow_id=version.id,
            end_user_id=end_user.id,
            session_id=end_user.session_id,
            run=run,
            conversation_id=conversation_id,
            message_id=message_id,
            message_created_at=message_created_at,
            row=row,
        )
        self._by_run[run_id], self._by_task[task_id] = live, live
        recorder = RunRecorder(self._writer, run_id, app.id)
        recorder.insert_run(row)
        live.task = asyncio.create_task(self._drive(live, recorder, on_finish))
        return live

    def _with_files(
        self,
        app_id: str,
        end_user_id: str,
        runner: WorkflowRunner,
        inputs: dict[str, Any],
        files: Sequence[Mapping[str, Any]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Request file mappings (sys.files and file inputs) as Dify File values."""
        out = dict(inputs)
        for var in runner.graph.nodes[runner.graph.root_id].data.get("variables") or []:
            name = str(var.get("variable"))
            if _is_file_input(var) and out.get(name) is not None:
                value = out[name]
                many = isinstance(value, list)
                got = self.files.resolve(app_id, end_user_id, value if many else [value], name)
                out[name] = got if many else got[0]
        return self.files.resolve(app_id, end_user_id, list(files), "files"), out

    async def _drive(self, live: LiveRun, recorder: RunRecorder, on_finish: OnFinish | None) -> None:
        finished: WorkflowFinished | None = None
        engine_run = live.run
        assert engine_run is not None  # noqa: S101 - a run this process drives
        try:
            # The run row is stored before the run starts: written beside a running workflow, its writer
            # thread fought the run for the GIL and slowed it by a third (bench/workflow.py). Readers that
            # race the write look at the live registry first.
            await recorder.run_row_stored()
            async for ev in engine_run.events():
                recorder.on_event(ev)
                if type(ev) is WorkflowFinished:
                    finished = ev
                    continue
                live.publish(ev)
                recorder.maybe_flush()
        except Exception as exc:  # the engine ends runs itself; this is a safety net so the run is never left open
            log.exception("workflow run %s crashed", live.run_id)
            finished = _failed(live.run_id, str(exc) or type(exc).__name__)
        finally:
            if finished is None:  # cancelled: the server is shutting down
                finished = _failed(live.run_id, KILLED_ERROR)
            try:
                await recorder.finish(finished)
                if on_finish is not None:
                    await on_finish(live, finished)
            except Exception:
                log.exception("storing the end of workflow run %s failed", live.run_id)
            finally:
                live.publish(finished)
                live.close()
                self._by_run.pop(live.run_id, None)
                self._by_task.pop(live.task_id, None)

    # --- control -------------------------------------------------------------------------------
    def stop(self, app_id: str, user: str | None, task_id: str) -> None:
        """Stop a live run of this app's end user by task id; an unknown or finished task, another app's or
        another user's is ignored, as Dify's AppQueueManager.set_stop_flag ignores a task that does not
        belong to the caller (the answer is a success either way)."""
        live = self._by_task.get(task_id)
        if live is None or live.app_id != app_id or not user:
            return
        end_user = self._end_users.find(app_id, user)
        if end_user is not None and live.end_user_id == end_user.id:
            live.stop()

    def live(self, run_id: str) -> LiveRun | None:
        return self._by_run.get(run_id)

    def live_by_task(self, task_id: str) -> LiveRun | None:
        return self._by_task.get(task_id)

    async def shutdown(self) -> None:
        """Cancel live runs (their rows are marked failed now, or by `recover()` on the next start)."""
        tasks = [lv.task for lv in self._by_run.values() if lv.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def recover(self, alive: Collection[str] = ()) -> int:
        """Fail the runs and node executions left `running` by a process that is not among `alive` (server
        instance ids; runs with no owner count as left); returns how many runs."""
        now = utcnow()
        runs: Table = WorkflowRun.__table__  # type: ignore[assignment]  # declared tables are Tables
        nodes: Table = NodeExecution.__table__  # type: ignore[assignment]
        left = and_(runs.c.status == "running", or_(runs.c.instance_id.is_(None), runs.c.instance_id.not_in(alive)))
        with self._db.engine.begin() as conn:
            conn.execute(
                update(nodes)
                .where(nodes.c.status == "running", nodes.c.run_id.in_(select(runs.c.id).where(left)))
                .values(status="failed", error=KILLED_ERROR, finished_at=now)
            )
            n = conn.execute(
                update(runs).where(left).values(status="failed", error=KILLED_ERROR, finished_at=now)
            ).rowcount
        if n:
            log.warning("marked %d interrupted workflow run(s) as failed", n)
        return int(n)

    # --- reads ---------------------------------------------------------------------------------
    def get_run(self, app_id: str, run_id: str) -> WorkflowRun:
        with self._db.session() as s:
            row = s.get(WorkflowRun, run_id)
        if row is None:  # a run this moment started, whose row is still on its way
            live = self._by_run.get(run_id)
            row = live.row if live is not None else None
        if row is None or row.app_id != app_id:
            raise NotFound("Workflow run not found.")
        return row

    def node_executions(self, run_id: str) -> list[NodeExecution]:
        with self._db.session() as s:
            return list(
                s.scalars(select(NodeExecution).where(NodeExecution.run_id == run_id).order_by(NodeExecution.index))
            )

    def changed_node_executions(self, run_id: str, seen: Mapping[str, str]) -> list[NodeExecution]:
        """The run's node rows that are new or whose status changed since `seen` (row id -> status) was read.
        A follower polls this: the statuses are a small read, and only rows it has not seen so are loaded."""
        with self._db.session() as s:
            states = s.execute(
                select(NodeExecution.id, NodeExecution.status).where(NodeExecution.run_id == run_id)
            ).all()
            wanted = [r.id for r in states if seen.get(r.id) != r.status]
            rows: list[NodeExecution] = []
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                rows.extend(s.scalars(select(NodeExecution).where(NodeExecution.id.in_(part))))
            return sorted(rows, key=lambda n: n.index)

    def logs(self, app_id: str, filters: LogFilters, page: int, limit: int) -> tuple[int, list[LogEntry]]:
        """Runs of the app, newest first, filtered as Dify's workflow app logs."""
        conds: list[Any] = [WorkflowRun.app_id == app_id, WorkflowRun.status != "running"]
        if filters.status:
            conds.append(WorkflowRun.status == filters.status)
        if filters.created_at_before is not None:
            conds.append(WorkflowRun.created_at <= filters.created_at_before)
        if filters.created_at_after is not None:
            conds.append(WorkflowRun.created_at >= filters.created_at_after)
        if filters.session_id:
            conds.append(WorkflowRun.created_by_session_id == filters.session_id)
        if filters.created_by_account:
            conds.append(False)  # runs through the Service API are never created by a console account
        if filters.keyword:
            # Dify matches the JSON text of inputs and outputs as stored (non-ASCII \u-escaped), the end user,
            # and the run id.
            escaped = json.dumps(filters.keyword[:30])[1:-1]
            like = "%" + escaped.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
            kw: list[Any] = [
                WorkflowRun.inputs.ilike(like, escape="\\"),
                WorkflowRun.outputs.ilike(like, escape="\\"),
                WorkflowRun.created_by_session_id.ilike(like, escape="\\"),
            ]
            try:
                kw.append(WorkflowRun.id == str(uuid.UUID(filters.keyword)))
            except ValueError:
                pass
            conds.append(or_(*kw))
        where = and_(*conds)
        with self._db.session() as s:
            total = int(s.scalar(select(func.count()).select_from(WorkflowRun).where(where)) or 0)
            rows = s.execute(
                select(WorkflowRun, EndUser)
                .outerjoin(EndUser, EndUser.id == WorkflowRun.created_by)
                .where(where)
                .order_by(WorkflowRun.created_at.desc(), WorkflowRun.id)
                .offset((page - 1) * limit)
                .limit(limit)
            ).all()
        return total, [LogEntry(r, u) for r, u in rows]


def _is_file_input(var: Any) -> bool:
    return isinstance(var, Mapping) and var.get("type") in ("file", "file-list")


def _failed(run_id: str, error: str) -> WorkflowFinished:
    now = int(time.time())
    return WorkflowFinished(
        workflow_run_id=run_id,
        status="failed",
        outputs={},
        error=error,
        elapsed_time=0.0,
        total_tokens=0,
        total_steps=0,
        exceptions_count=0,
        created_at=now,
        finished_at=now,
    )


def workflow_service(
    db: Database,
    registries: Registries,
    models: ModelResolver,
    settings: Settings,
    end_users: EndUserService,
    blobs: BlobStore,
    links: FileLinks,
    services: object,
) -> WorkflowRunService:
    """The run service with Openify's ports (the container calls this)."""
    http = GuardedHttpClient(settings.http_node)
    files = WorkflowFiles(db, blobs, http, links)
    document_limits = DocumentLimits.of(settings.extraction)
    ports = WorkflowPorts(db, models, Sandbox(settings.sandbox), http, files, services, document_limits)
    limits = RunLimits(max_steps=settings.workflow.max_steps, max_time_s=settings.workflow.max_time_s)
    file_limit = settings.upload.workflow_file_upload_limit
    return WorkflowRunService(db, registries, WorkflowVersions(db), ports, end_users, files, limits, file_limit)
