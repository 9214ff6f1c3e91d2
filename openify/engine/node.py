"""The contract of a node type: built once per graph from its DSL data, run once per execution."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from openify.engine.graph import NodeSpec
from openify.engine.variables import VariablePool

if TYPE_CHECKING:
    from openify.engine.execution import ChildRun
    from openify.engine.ports import Ports
    from openify.engine.run_state import RunState


class NodeError(Exception):
    """A node failed; the message is what the user sees in `node_finished.error`."""

    error_type = "NodeError"

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        if error_type:
            self.error_type = error_type


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a node output as it is produced (LLM text), for Answer/End streaming."""

    selector: tuple[str, ...]
    text: str


@dataclass(slots=True)
class NodeResult:
    outputs: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    process_data: Mapping[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # total_tokens, total_price, currency, ...
    handle: str = "source"  # the source handle whose edges are taken
    files: Sequence[Mapping[str, Any]] = ()


NodeItem = "StreamChunk | NodeResult | WorkflowEvent"


class NodeContext:
    """What a running node may use: the pool, the ports, the run, and (containers) child runs."""

    __slots__ = ("execution", "node_id", "pool", "ports", "run")

    def __init__(self, node_id: str, pool: VariablePool, ports: Ports, run: RunState, execution: Any) -> None:
        self.node_id, self.pool, self.ports, self.run, self.execution = node_id, pool, ports, run, execution

    def child_run(self, start_node_id: str, pool: VariablePool, scope: Mapping[str, Any]) -> ChildRun:
        """Run the subgraph rooted at `start_node_id` (an iteration item or a loop round)."""
        run: ChildRun = self.execution.child(start_node_id, pool, scope)
        return run

    def require(self, port_name: str) -> Any:
        port = getattr(self.ports, port_name)
        if port is None:
            raise NodeError(f"This server has no {port_name.replace('_', ' ')} configured for workflow nodes.")
        return port


class Node:
    """Base of every node type. Override `run` (or `stream` for nodes that stream or forward events)."""

    type: ClassVar[str] = ""
    is_branch: ClassVar[bool] = False  # chooses among source handles (if-else, classifier)
    is_container: ClassVar[bool] = False  # iteration/loop: emits its own events instead of node_*
    is_response: ClassVar[bool] = False  # answer/end: its template streams

    __slots__ = ("data", "id", "spec", "title")

    def __init__(self, spec: NodeSpec) -> None:
        self.spec, self.id, self.title, self.data = spec, spec.id, spec.title, spec.data

    async def run(self, ctx: NodeContext) -> NodeResult:
        raise NotImplementedError

    async def stream(self, ctx: NodeContext) -> AsyncIterator[Any]:
        """Yield StreamChunks and forwarded WorkflowEvents, then exactly one NodeResult."""
        yield await self.run(ctx)

    def response_segments(self) -> list[str | list[str]]:
        """Literal text and selectors this node streams (Answer/End)."""
        return []

    def writes(self) -> list[list[str]]:
        """Selectors this node writes besides its own outputs (assigners): a response reading them waits."""
        return []


def selector(value: Any) -> list[str]:
    """A DSL selector as a list of strings (exports sometimes hold ints)."""
    if not isinstance(value, list | tuple):
        return []
    return [str(v) for v in value]


def parse_json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def usage_metadata(usage: Any) -> dict[str, Any]:
    """execution_metadata keys of an LLM call (Dify: total_tokens, total_price, currency)."""
    return {"total_tokens": usage.total_tokens, "total_price": str(usage.total_price), "currency": usage.currency}


def usage_dict(usage: Any) -> dict[str, Any]:
    """Dify's `usage` object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "prompt_unit_price": str(usage.prompt_unit_price),
        "prompt_price_unit": str(usage.price_unit),
        "prompt_price": str(usage.prompt_price),
        "completion_tokens": usage.completion_tokens,
        "completion_unit_price": str(usage.completion_unit_price),
        "completion_price_unit": str(usage.price_unit),
        "completion_price": str(usage.completion_price),
        "total_tokens": usage.total_tokens,
        "total_price": str(usage.total_price),
        "currency": usage.currency,
        "latency": usage.latency,
    }


NodeFactory = type[Node]  # what `r.nodes` holds: a node class, built once per node of a graph from its NodeSpec
