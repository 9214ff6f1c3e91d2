"""The state one workflow run shares across its (sub)graph executions, and its limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openify.engine.ports import Ports
from openify.engine.variables import VariablePool

# Messages from node tasks to the execution that runs them.
EVENT, CHUNK, DONE, FAIL, ABORT = range(5)


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
            self.root_queue.put_nowait((ABORT, message))

    async def set_conversation_variable(self, name: str, value: Any) -> None:
        if self.pool is None:
            raise RuntimeError("the run has not started")
        self.pool.add("conversation", name, value)
        store = self.ports.conversation_variables
        if store is not None and self.conversation_id:
            await store.save(self.conversation_id, name, value)


@dataclass(frozen=True, slots=True)
class NodeRules:
    max_retries: int
    retry_interval_s: float
    error_strategy: str | None
    default_value: Mapping[str, Any]


def node_rules(data: Mapping[str, Any]) -> NodeRules:
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
    return NodeRules(
        max_retries=int(retry.get("max_retries") or 0) if enabled else 0,
        retry_interval_s=float(retry.get("retry_interval") or 0) / 1000.0,
        error_strategy=strategy if strategy in ("fail-branch", "default-value") else None,
        default_value=defaults,
    )
