"""Runs one (sub)graph: ready nodes as asyncio tasks, branch handles, skip propagation, retries,
error strategies and per-run step limits. The top level and every iteration item / loop round
are each one Execution."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from openify.engine.events import AgentLog, NodeFinished, NodeRetry, NodeStarted, NodeStatus, WorkflowEvent
from openify.engine.node import NodeContext, NodeError, NodeResult, StreamChunk
from openify.engine.run_state import CHUNK, DONE, EVENT, FAIL, RunAborted, RunState
from openify.engine.streaming import ResponseCoordinator
from openify.engine.variables import VariablePool
from openify.errors import OpenifyError

if TYPE_CHECKING:
    from openify.engine.runner import WorkflowRunner

log = logging.getLogger("openify.engine")

PENDING, RUNNING, FINISHED, SKIPPED = 0, 1, 2, 3
# What a node fails with by design (user code, HTTP, model, sandbox, tool errors): shown as Dify shows them,
# retried and routed by the node's error strategy. Anything else is a bug of ours: see `internal_error`.
EXPECTED_ERRORS = (NodeError, OpenifyError)


class InternalError(NodeError):
    """A node failed through a bug of the server, not through its input: logged with its traceback."""

    error_type = "InternalError"


def internal_error(exc: BaseException, run_id: str, node_id: str | None) -> InternalError:
    """Log a bug with the run and node it hit, and the error the user sees instead (no internal details)."""
    where = f"node {node_id}" if node_id else "the workflow"
    log.error("internal error in workflow run %s, %s", run_id, where, exc_info=exc)
    return InternalError(f"Internal error ({type(exc).__name__}) in {where}; the server log has the details.")


_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
                lambda n: self.state.get(n) == FINISHED,
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
                if kind == EVENT:
                    yield msg[1]
                elif kind == CHUNK:
                    if self.responses is not None:
                        for ev in self.responses.on_chunk(msg[1].selector, msg[1].text):
                            yield ev
                elif kind == DONE:
                    running -= 1
                    node_id = msg[1]
                    self.tasks.pop(node_id, None)
                    running += self._node_done(node_id, msg[2], msg[3])
                    if self.responses is not None:
                        for ev in self.responses.on_node_done(node_id):
                            yield ev
                elif kind == FAIL:
                    self.error = msg[2]
                    break
                else:  # ABORT: a limit or stop; only the root queue receives these
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
        self.state[node_id] = FINISHED
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
            self.edges[(e.source, e.target, e.source_handle)] = False
        for e in out:
            launched += self._check(e.target, predecessor)
        return launched

    async def _run_node(self, node_id: str, predecessor: str | None) -> None:
        try:
            await self._execute(node_id, predecessor)
        except Exception as exc:  # a bug outside the node's own code: fail the run instead of hanging it
            self.queue.put_nowait((FAIL, node_id, str(internal_error(exc, self.run.run_id, node_id))))

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
                    EVENT,
                    NodeStarted(
                        id=exec_id,
                        node_id=node_id,
                        node_type=spec.type,
                        title=spec.title,
                        index=index,
                        predecessor_node_id=predecessor,
                        created_at=created,
                        iteration_id=it_id,
                        loop_id=loop_id,
                    ),
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
                        q.put_nowait((CHUNK, item))
                    elif cls is AgentLog:  # the node does not know its execution id
                        q.put_nowait((EVENT, msgspec.structs.replace(item, node_execution_id=exec_id)))
                    else:
                        q.put_nowait((EVENT, item))
                if result is None:
                    raise NodeError(f"Node {node_id} produced no result.")
                failure: Exception | None = None
            except RunAborted as exc:
                run.abort(str(exc))
                return
            except EXPECTED_ERRORS as exc:
                failure = exc
            except Exception as exc:  # a bug: no retry, and no error strategy hides it
                failure = internal_error(exc, run.run_id, node_id)
                break
            if failure is None or attempt >= rules.max_retries:
                break
            q.put_nowait(
                (
                    EVENT,
                    NodeRetry(
                        id=exec_id,
                        node_id=node_id,
                        node_type=spec.type,
                        title=spec.title,
                        index=index,
                        predecessor_node_id=predecessor,
                        inputs={},
                        process_data={},
                        outputs={},
                        error=_message(failure),
                        elapsed_time=time.perf_counter() - t0,
                        execution_metadata=self._meta({}),
                        created_at=created,
                        finished_at=int(time.time()),
                        retry_index=attempt,
                        iteration_id=it_id,
                        loop_id=loop_id,
                    ),
                )
            )
            attempt += 1
            await asyncio.sleep(rules.retry_interval_s)
        elapsed = time.perf_counter() - t0

        def finished(
            status: NodeStatus,
            error: str | None,
            outputs: Mapping[str, Any],
            metadata: Mapping[str, Any],
            inputs: Mapping[str, Any] = _EMPTY,
            process_data: Mapping[str, Any] = _EMPTY,
            files: Sequence[Mapping[str, Any]] = (),
        ) -> None:
            if node.is_container:  # containers report through their own iteration/loop events
                return
            ev = NodeFinished(
                id=exec_id,
                node_id=node_id,
                node_type=spec.type,
                title=spec.title,
                index=index,
                predecessor_node_id=predecessor,
                inputs=inputs,
                process_data=process_data,
                outputs=outputs,
                status=status,
                error=error,
                elapsed_time=elapsed,
                execution_metadata=self._meta(metadata),
                created_at=created,
                finished_at=int(time.time()),
                files=files,
                iteration_id=it_id,
                loop_id=loop_id,
            )
            q.put_nowait((EVENT, ev))

        if failure is None and result is not None:
            self.pool.add_outputs(node_id, result.outputs)
            tokens = result.metadata.get("total_tokens")
            if tokens and not node.is_container:
                run.total_tokens += int(tokens)
            if self.outputs is not None and spec.type == "end":
                self.outputs.update(result.outputs)
            finished(
                "succeeded",
                None,
                result.outputs,
                result.metadata,
                result.inputs,
                result.process_data,
                result.files,
            )
            q.put_nowait((DONE, node_id, result.handle, False))
            return
        failure = failure or NodeError(f"Node {node_id} produced no result.")
        message = _message(failure)
        error_type = getattr(failure, "error_type", type(failure).__name__)
        strategy = None if isinstance(failure, InternalError) else rules.error_strategy
        if strategy is None:
            finished("failed", message, {}, {})
            q.put_nowait((FAIL, node_id, message))
            return
        outputs: dict[str, Any] = {"error_message": message, "error_type": error_type}
        if strategy == "default-value":
            outputs = {**rules.default_value, **outputs}
        self.pool.add_outputs(node_id, outputs)
        run.exceptions += 1
        finished("exception", message, outputs, {"error_strategy": strategy})
        q.put_nowait(
            (DONE, node_id, "fail-branch" if strategy == "fail-branch" else "source", strategy == "fail-branch")
        )

    def _meta(self, metadata: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.scope:
            return metadata
        return {**metadata, **self.scope}


def _message(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
