"""Runs a Graph: ready nodes as asyncio tasks, branch handles, skip propagation, retries, error
strategies, step/time limits and stop. Yields typed events; knows nothing of HTTP or storage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openify.engine.events import (
    NodeFinished,
    NodeRetry,
    NodeStarted,
    TextChunk,
    WorkflowEvent,
    WorkflowFinished,
    WorkflowStarted,
)
from openify.engine.graph import Graph, GraphValidationError
from openify.engine.node import Node, NodeContext, NodeError, NodeResult, StreamChunk
from openify.engine.ports import Ports
from openify.engine.streaming import ResponseCoordinator
from openify.engine.variables import VariablePool, files_in
from openify.registry import Registries

PENDING, RUNNING, DONE, SKIPPED = 0, 1, 2, 3
_TAKEN, _NOT_TAKEN = True, False
_EVENT, _CHUNK, _DONE, _FAIL, _ABORT = range(5)


@dataclass(frozen=True, slots=True)
class RunLimits:
    """Dify's WORKFLOW_MAX_EXECUTION_STEPS and WORKFLOW_MAX_EXECUTION_TIME."""

    max_steps: int = 500
    max_time_s: float = 1200.0


@dataclass(frozen=True, slots=True)
class SystemInputs:
    """`sys.*` values of one run; chat-only ones are ignored in workflow mode."""

    user_id: str = ""
    files: Sequence[Mapping[str, Any]] = ()
    query: str = ""
    conversation_id: str = ""
    dialogue_count: int = 1
    app_id: str = ""
    workflow_id: str = ""


class RunAborted(Exception):
    """The run hit a limit or was stopped; ends the whole run whatever the error strategies."""


@dataclass
class RunState:
    run_id: str
    mode: str
    ports: Ports
    limits: RunLimits
    conversation_id: str = ""
    steps: int = 0
    index: int = 0
    total_tokens: int = 0
    exceptions: int = 0
    started: float = field(default_factory=time.perf_counter)
    stopped: bool = False
    root_queue: asyncio.Queue[Any] | None = None
    pool: VariablePool | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    system: SystemInputs = field(default_factory=lambda: SystemInputs())

    def abort(self, message: str) -> None:
        if self.root_queue is not None:
            self.root_queue.put_nowait((_ABORT, message))

    async def set_conversation_variable(self, name: str, value: Any) -> None:
        if self.pool is None:
            raise RuntimeError("the run has not started")
        self.pool.add("conversation", name, value)
        store = self.ports.conversation_variables
        if store is not None and self.conversation_id:
            await store.save(self.conversation_id, name, value)


@dataclass(frozen=True, slots=True)
class _NodeRules:
    max_retries: int
    retry_interval_s: float
    error_strategy: str | None
    default_value: Mapping[str, Any]


class WorkflowRunner:
    """Built once per Graph; `start()` makes one run."""

    def __init__(
        self, graph: Graph, registry: Registries, ports: Ports | None = None, limits: RunLimits | None = None
    ) -> None:
        self.graph, self.ports, self.limits = graph, ports or Ports(), limits or RunLimits()
        self.instances: dict[str, Node] = {}
        for spec in graph.nodes.values():
            cls = registry.nodes.find(spec.type)
            if cls is None:
                raise GraphValidationError(f"Unsupported node type: {spec.id} ({spec.type}, {spec.title!r})")
            self.instances[spec.id] = cls(spec)
        self.rules = {nid: _rules(spec.data) for nid, spec in graph.nodes.items()}
        self.conversation_types: dict[str, str] = {
            str(v.get("name")): str(v.get("value_type") or "") for v in graph.conversation_variables
        }
        self._scopes: dict[str | None, dict[str, Node]] = {}
        for nid, spec in graph.nodes.items():
            self._scopes.setdefault(spec.parent_id, {})[nid] = self.instances[nid]
        self._ancestors: dict[str, set[str]] = {}

    def scope(self, parent: str | None) -> dict[str, Node]:
        return self._scopes.get(parent, {})

    def ancestors(self, node_id: str) -> set[str]:
        got = self._ancestors.get(node_id)
        if got is None:
            got = self._ancestors[node_id] = self.graph.ancestors(node_id)
        return got

    def start(
        self,
        inputs: Mapping[str, Any],
        system: SystemInputs | None = None,
        *,
        conversation_variables: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> WorkflowRun:
        return WorkflowRun(self, dict(inputs), system or SystemInputs(), conversation_variables, run_id)


def _rules(data: Mapping[str, Any]) -> _NodeRules:
    retry = data.get("retry_config") or {}
    enabled = bool(retry.get("retry_enabled"))
    defaults: dict[str, Any] = {}
    for item in data.get("default_value") or []:
        if isinstance(item, Mapping) and "key" in item:
            value = item.get("value")
            if item.get("type") != "string" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            defaults[str(item["key"])] = value
    strategy = data.get("error_strategy")
    return _NodeRules(
        max_retries=int(retry.get("max_retries") or 0) if enabled else 0,
        retry_interval_s=float(retry.get("retry_interval") or 0) / 1000.0,
        error_strategy=strategy if strategy in ("fail-branch", "default-value") else None,
        default_value=defaults,
    )


class WorkflowRun:
    """One run. Iterate `events()` once; `stop()` ends it with status `stopped`."""

    def __init__(
        self,
        runner: WorkflowRunner,
        inputs: dict[str, Any],
        system: SystemInputs,
        conversation_variables: Mapping[str, Any] | None,
        run_id: str | None,
    ) -> None:
        self.runner, self.inputs, self.system = runner, inputs, system
        self.run_id = run_id or str(uuid.uuid4())
        self._conv_given = conversation_variables
        self.state = RunState(self.run_id, runner.graph.mode, runner.ports, runner.limits, system.conversation_id)
        self.state.inputs, self.state.system = inputs, system

    def stop(self) -> None:
        """Ask the run to stop; it ends with a WorkflowFinished of status `stopped`."""
        self.state.stopped = True
        if self.state.root_queue is not None:
            self.state.root_queue.put_nowait((_ABORT, None))

    async def _build_pool(self) -> VariablePool:
        g, s = self.runner.graph, self.system
        pool = VariablePool()
        chat = g.mode == "advanced-chat"
        sys_vars: dict[str, Any] = {
            "files": list(s.files),
            "user_id": s.user_id,
            "app_id": s.app_id,
            "workflow_id": s.workflow_id,
            "workflow_run_id": self.run_id,
        }
        if chat:
            sys_vars.update(query=s.query, conversation_id=s.conversation_id, dialogue_count=s.dialogue_count)
        else:
            sys_vars["timestamp"] = int(time.time())
        pool.add_outputs("sys", sys_vars)
        for var in g.environment_variables:
            pool.add("env", str(var.get("name")), var.get("value"))
        conv: dict[str, Any] = {str(v.get("name")): v.get("value") for v in g.conversation_variables}
        if self._conv_given is not None:
            conv.update({k: v for k, v in self._conv_given.items() if k in conv})
        elif chat and s.conversation_id and self.runner.ports.conversation_variables is not None:
            stored = await self.runner.ports.conversation_variables.load(s.conversation_id)
            conv.update({k: v for k, v in stored.items() if k in conv})
        pool.add_outputs("conversation", conv)
        return pool

    async def events(self) -> AsyncIterator[WorkflowEvent]:
        st = self.state
        created = int(time.time())
        st.started = time.perf_counter()
        yield WorkflowStarted(self.run_id, self.inputs, created)
        st.root_queue = asyncio.Queue()
        if st.stopped:  # stop() came before the run started
            st.root_queue.put_nowait((_ABORT, None))
        status, error = "succeeded", None
        answer: list[str] = []
        outputs: dict[str, Any] = {}
        pool: VariablePool | None = None
        timer = None
        try:
            pool = st.pool = await self._build_pool()
            timer = asyncio.get_running_loop().call_later(
                st.limits.max_time_s,
                st.root_queue.put_nowait,
                (_ABORT, f"Max execution time {st.limits.max_time_s:g}s reached."),
            )
            execution = Execution(self.runner, st, pool, self.runner.graph.root_id, {}, st.root_queue, outputs)
            async for ev in execution.events():
                if type(ev) is TextChunk:
                    answer.append(ev.text)
                yield ev
            if execution.aborted is not None or st.stopped:
                status, error = ("stopped", "Stopped by user.") if st.stopped else ("failed", execution.aborted)
            elif execution.error is not None:
                status, error = "failed", execution.error
            elif st.exceptions:
                status = "partial-succeeded"
        except Exception as exc:  # a broken port or pool setup: the run fails, the stream still ends cleanly
            status, error = "failed", str(exc) or type(exc).__name__
        finally:
            if timer is not None:
                timer.cancel()
        text = "".join(answer)
        files: list[Mapping[str, Any]] = []
        for v in outputs.values():
            files.extend(files_in(v))
        if st.mode == "advanced-chat":
            outputs = {"answer": text, **outputs}
        yield WorkflowFinished(
            workflow_run_id=self.run_id,
            status=status,  # type: ignore[arg-type]  # one of the four literals above
            outputs=outputs,
            error=error,
            elapsed_time=time.perf_counter() - st.started,
            total_tokens=st.total_tokens,
            total_steps=st.steps,
            exceptions_count=st.exceptions,
            created_at=created,
            finished_at=int(time.time()),
            files=files,
            answer=text,
            conversation_variables=pool.node_values("conversation") if pool is not None else {},
        )


class ChildRun:
    """A subgraph run of a container (an iteration item or a loop round)."""

    def __init__(self, execution: Execution) -> None:
        self._execution = execution

    def events(self) -> AsyncIterator[WorkflowEvent]:
        return self._execution.events()

    @property
    def error(self) -> str | None:
        return self._execution.error

    @property
    def reached(self) -> set[str]:
        """Types of the nodes that ran (a loop checks for `loop-end`)."""
        return self._execution.ran_types


class Execution:
    """Runs one (sub)graph: the top level, or one iteration item / loop round."""

    def __init__(
        self,
        runner: WorkflowRunner,
        run: RunState,
        pool: VariablePool,
        root_id: str,
        scope: Mapping[str, Any],
        queue: asyncio.Queue[Any] | None,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        self.runner, self.run, self.pool, self.root_id, self.scope = runner, run, pool, root_id, scope
        self.queue: asyncio.Queue[Any] = queue if queue is not None else asyncio.Queue()
        self.outputs = outputs
        self.parent_id: str | None = runner.graph.nodes[root_id].parent_id
        self.nodes = runner.scope(self.parent_id)
        self.state: dict[str, int] = dict.fromkeys(self.nodes, PENDING)
        self.edges: dict[tuple[str, str, str], bool] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.error: str | None = None
        self.aborted: str | None = None
        self.ran_types: set[str] = set()
        self.steps = 0
        self.iteration_id: str | None = scope.get("iteration_id")
        self.loop_id: str | None = scope.get("loop_id")
        responses = [nid for nid, n in self.nodes.items() if n.is_response]
        self.responses = (
            ResponseCoordinator(
                responses,
                self.nodes,
                runner.ancestors,
                pool,
                lambda n: self.state.get(n) == DONE,
                lambda n: self.state.get(n) == SKIPPED,
            )
            if responses
            else None
        )

    def child(self, start_node_id: str, pool: VariablePool, scope: Mapping[str, Any]) -> ChildRun:
        return ChildRun(Execution(self.runner, self.run, pool, start_node_id, scope, None))

    async def events(self) -> AsyncIterator[WorkflowEvent]:
        q = self.queue
        running = 1
        self.state[self.root_id] = RUNNING
        self.tasks[self.root_id] = asyncio.create_task(self._run_node(self.root_id, None))
        try:
            while running:
                msg = await q.get()
                kind = msg[0]
                if kind == _EVENT:
                    yield msg[1]
                elif kind == _CHUNK:
                    if self.responses is not None:
                        for ev in self.responses.on_chunk(msg[1].selector, msg[1].text):
                            yield ev
                elif kind == _DONE:
                    running -= 1
                    node_id = msg[1]
                    self.tasks.pop(node_id, None)
                    running += self._node_done(node_id, msg[2], msg[3])
                    if self.responses is not None:
                        for ev in self.responses.on_node_done(node_id):
                            yield ev
                elif kind == _FAIL:
                    self.error = msg[2]
                    break
                else:  # _ABORT: a limit or stop; only the root queue receives these
                    self.aborted = msg[1]
                    break
            if self.error is None and self.aborted is None and self.responses is not None:
                for ev in self.responses.finish():
                    yield ev
        finally:
            for t in self.tasks.values():
                t.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def _node_done(self, node_id: str, handle: str, failed_branch: bool) -> int:
        """Mark edges after a finished node and launch what became ready; returns how many started."""
        self.state[node_id] = DONE
        node = self.nodes[node_id]
        launched = 0
        edges = self.edges
        out = self.runner.graph.out_edges[node_id]
        for e in out:
            if failed_branch:
                taken = e.source_handle == "fail-branch"
            elif node.is_branch:
                taken = e.source_handle == handle
            else:
                taken = e.source_handle != "fail-branch"
            edges[(e.source, e.target, e.source_handle)] = taken
        for e in out:
            launched += self._check(e.target, node_id)
        return launched

    def _check(self, node_id: str, predecessor: str) -> int:
        if self.state.get(node_id) != PENDING:
            return 0
        any_taken = False
        for e in self.runner.graph.in_edges[node_id]:
            s = self.edges.get((e.source, e.target, e.source_handle))
            if s is None:
                return 0
            any_taken = any_taken or s
        if any_taken:
            self.state[node_id] = RUNNING
            self.tasks[node_id] = asyncio.create_task(self._run_node(node_id, predecessor))
            return 1
        return self._skip(node_id, predecessor)

    def _skip(self, node_id: str, predecessor: str) -> int:
        self.state[node_id] = SKIPPED
        launched = 0
        out = self.runner.graph.out_edges[node_id]
        for e in out:
            self.edges[(e.source, e.target, e.source_handle)] = _NOT_TAKEN
        for e in out:
            launched += self._check(e.target, predecessor)
        return launched

    async def _run_node(self, node_id: str, predecessor: str | None) -> None:
        try:
            await self._execute(node_id, predecessor)
        except Exception as exc:  # a bug outside the node's own code: fail the run instead of hanging it
            self.queue.put_nowait((_FAIL, node_id, f"Internal error in node {node_id}: {_message(exc)}"))

    async def _execute(self, node_id: str, predecessor: str | None) -> None:
        run, q = self.run, self.queue
        # Like Dify's per-engine limit: each (sub)graph run counts its own node starts, so a long
        # iteration is bounded per item, not by the total; total_steps reports the top level.
        self.steps += 1
        if self.parent_id is None:
            run.steps += 1
        if self.steps > run.limits.max_steps:
            run.abort(f"Max steps {run.limits.max_steps} reached.")
            return
        if time.perf_counter() - run.started > run.limits.max_time_s:
            run.abort(f"Max execution time {run.limits.max_time_s:g}s reached.")
            return
        node = self.nodes[node_id]
        spec = node.spec
        self.ran_types.add(spec.type)
        rules = self.runner.rules[node_id]
        run.index += 1
        index = run.index
        exec_id = str(uuid.uuid4())
        created = int(time.time())
        it_id, loop_id = self.iteration_id, self.loop_id
        if not node.is_container:
            q.put_nowait(
                (
                    _EVENT,
                    NodeStarted(exec_id, node_id, spec.type, spec.title, index, predecessor, created, it_id, loop_id),
                )
            )
        ctx = NodeContext(node_id, self.pool, run.ports, run, self)
        attempt = 0
        t0 = time.perf_counter()
        while True:
            result: NodeResult | None = None
            try:
                async for item in node.stream(ctx):
                    cls = type(item)
                    if cls is NodeResult:
                        result = item
                    elif cls is StreamChunk:
                        q.put_nowait((_CHUNK, item))
                    else:
                        q.put_nowait((_EVENT, item))
                if result is None:
                    raise NodeError(f"Node {node_id} produced no result.")
                failure: Exception | None = None
            except RunAborted as exc:
                run.abort(str(exc))
                return
            except Exception as exc:
                failure = exc
            if failure is None or attempt >= rules.max_retries:
                break
            q.put_nowait(
                (
                    _EVENT,
                    NodeRetry(
                        exec_id,
                        node_id,
                        spec.type,
                        spec.title,
                        index,
                        predecessor,
                        {},
                        {},
                        {},
                        _message(failure),
                        time.perf_counter() - t0,
                        self._meta({}),
                        created,
                        int(time.time()),
                        attempt,
                        "retry",
                        it_id,
                        loop_id,
                    ),
                )
            )
            attempt += 1
            await asyncio.sleep(rules.retry_interval_s)
        elapsed = time.perf_counter() - t0
        if failure is None and result is not None:
            self.pool.add_outputs(node_id, result.outputs)
            tokens = result.metadata.get("total_tokens")
            if tokens and not node.is_container:
                run.total_tokens += int(tokens)
            if self.outputs is not None and spec.type == "end":
                self.outputs.update(result.outputs)
            if not node.is_container:
                q.put_nowait(
                    (
                        _EVENT,
                        NodeFinished(
                            exec_id,
                            node_id,
                            spec.type,
                            spec.title,
                            index,
                            predecessor,
                            result.inputs,
                            result.process_data,
                            result.outputs,
                            "succeeded",
                            None,
                            elapsed,
                            self._meta(result.metadata),
                            created,
                            int(time.time()),
                            result.files,
                            it_id,
                            loop_id,
                        ),
                    )
                )
            q.put_nowait((_DONE, node_id, result.handle, False))
            return
        failure = failure or NodeError(f"Node {node_id} produced no result.")
        message = _message(failure)
        error_type = getattr(failure, "error_type", type(failure).__name__)
        strategy = rules.error_strategy
        if strategy is None:
            if not node.is_container:
                q.put_nowait(
                    (
                        _EVENT,
                        NodeFinished(
                            exec_id,
                            node_id,
                            spec.type,
                            spec.title,
                            index,
                            predecessor,
                            {},
                            {},
                            {},
                            "failed",
                            message,
                            elapsed,
                            self._meta({}),
                            created,
                            int(time.time()),
                            (),
                            it_id,
                            loop_id,
                        ),
                    )
                )
            q.put_nowait((_FAIL, node_id, message))
            return
        outputs: dict[str, Any] = {"error_message": message, "error_type": error_type}
        if strategy == "default-value":
            outputs = {**rules.default_value, **outputs}
        self.pool.add_outputs(node_id, outputs)
        run.exceptions += 1
        if not node.is_container:
            q.put_nowait(
                (
                    _EVENT,
                    NodeFinished(
                        exec_id,
                        node_id,
                        spec.type,
                        spec.title,
                        index,
                        predecessor,
                        {},
                        {},
                        outputs,
                        "exception",
                        message,
                        elapsed,
                        self._meta({"error_strategy": strategy}),
                        created,
                        int(time.time()),
                        (),
                        it_id,
                        loop_id,
                    ),
                )
            )
        q.put_nowait(
            (_DONE, node_id, "fail-branch" if strategy == "fail-branch" else "source", strategy == "fail-branch")
        )

    def _meta(self, metadata: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.scope:
            return metadata
        return {**metadata, **self.scope}


def _message(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
