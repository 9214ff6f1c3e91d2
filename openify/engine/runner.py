"""Runs a Graph: one WorkflowRunner per graph version, one WorkflowRun per run. Yields typed events;
knows nothing of HTTP or storage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openify.engine.events import TextChunk, WorkflowEvent, WorkflowFinished, WorkflowStarted
from openify.engine.execution import EXPECTED_ERRORS, Execution, internal_error
from openify.engine.graph import Graph, GraphValidationError
from openify.engine.node import Node
from openify.engine.ports import Ports
from openify.engine.run_state import ABORT, RunLimits, RunState, SystemInputs, node_rules
from openify.engine.secrets import SecretMask
from openify.engine.variables import VariablePool, files_in
from openify.registry import Registries

__all__ = ["RunLimits", "SystemInputs", "WorkflowRun", "WorkflowRunner"]


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
        self.rules = {nid: node_rules(spec.data) for nid, spec in graph.nodes.items()}
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
            self.state.root_queue.put_nowait((ABORT, None))

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
        """The run's events, secret environment values masked (engine/secrets.py): whatever streams, answers
        or stores them never sees a secret."""
        mask = SecretMask(self.runner.graph.environment_variables)
        async for ev in self._events():
            if mask:
                for masked in mask.events(ev):
                    yield masked
            else:
                yield ev

    async def _events(self) -> AsyncIterator[WorkflowEvent]:
        st = self.state
        created = int(time.time())
        st.started = time.perf_counter()
        yield WorkflowStarted(self.run_id, self.inputs, created)
        st.root_queue = asyncio.Queue()
        if st.stopped:  # stop() came before the run started
            st.root_queue.put_nowait((ABORT, None))
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
                (ABORT, f"Max execution time {st.limits.max_time_s:g}s reached."),
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
        except EXPECTED_ERRORS as exc:  # a port refused (a stored value, a limit): the run fails as it says
            status, error = "failed", str(exc) or type(exc).__name__
        except Exception as exc:  # a bug in a port or the pool setup: logged; the stream still ends cleanly
            status, error = "failed", str(internal_error(exc, self.run_id, None))
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
