"""Typed workflow events. Field names are Dify's (`task_entities.py`), so the SSE layer renames nothing.

`id` of NodeStarted/NodeFinished/NodeRetry is the node *execution* id; `id` of the iteration and loop
events is the node id, as in Dify. Times: `created_at`/`finished_at` Unix seconds, `elapsed_time` seconds.

Events are msgspec Structs: one is built for every node start and end, and a frozen dataclass took five times
as long to build. The three node events go further: their members are those of Dify's `data` object, in its
order, so a stream encodes them as they are (api/workflow_events.py); they are built by keyword.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

NodeStatus = Literal["succeeded", "failed", "exception"]
RunStatus = Literal["succeeded", "failed", "stopped", "partial-succeeded"]


class WorkflowStarted(msgspec.Struct, frozen=True):
    workflow_run_id: str
    inputs: Mapping[str, Any]
    created_at: int


class NodeStarted(msgspec.Struct, frozen=True, kw_only=True):
    """node_started's `data`."""

    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: Mapping[str, Any] | None = None  # Dify sends null at start
    inputs_truncated: bool = False  # Dify's; Openify never truncates
    created_at: int
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)
    iteration_id: str | None = None
    loop_id: str | None = None
    agent_strategy: None = None  # Dify's; set only for its agent nodes


class NodeFinished(msgspec.Struct, frozen=True, kw_only=True):
    """node_finished's `data`."""

    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: Mapping[str, Any]
    inputs_truncated: bool = False
    process_data: Mapping[str, Any]
    process_data_truncated: bool = False
    outputs: Mapping[str, Any]
    outputs_truncated: bool = False
    status: NodeStatus
    error: str | None
    elapsed_time: float
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int
    files: Sequence[Mapping[str, Any]] = ()
    iteration_id: str | None = None
    loop_id: str | None = None


class NodeRetry(msgspec.Struct, frozen=True, kw_only=True):
    """node_retry's `data`: a failed attempt that will be retried; node_finished's members and `retry_index`."""

    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: Mapping[str, Any]
    inputs_truncated: bool = False
    process_data: Mapping[str, Any]
    process_data_truncated: bool = False
    outputs: Mapping[str, Any]
    outputs_truncated: bool = False
    status: str = "retry"
    error: str
    elapsed_time: float
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int
    files: Sequence[Mapping[str, Any]] = ()
    iteration_id: str | None = None
    loop_id: str | None = None
    retry_index: int


class TextChunk(msgspec.Struct, frozen=True):
    """Streamed output of an End (workflow: `text_chunk`) or Answer node (chatflow: `message`)."""

    text: str
    from_variable_selector: Sequence[str]
    node_id: str = ""  # the response node streaming it


class IterationStarted(msgspec.Struct, frozen=True):
    id: str
    node_id: str
    node_type: str
    title: str
    created_at: int
    inputs: Mapping[str, Any]
    metadata: Mapping[str, Any]
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)


class IterationNext(msgspec.Struct, frozen=True):
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    created_at: int
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)


class IterationCompleted(msgspec.Struct, frozen=True):
    id: str
    node_id: str
    node_type: str
    title: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    status: NodeStatus
    error: str | None
    elapsed_time: float
    total_tokens: int
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int
    steps: int
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)


class LoopStarted(msgspec.Struct, frozen=True):
    id: str
    node_id: str
    node_type: str
    title: str
    created_at: int
    inputs: Mapping[str, Any]
    metadata: Mapping[str, Any]
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)


class LoopNext(msgspec.Struct, frozen=True):
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    created_at: int
    pre_loop_output: Any = None
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)


class LoopCompleted(msgspec.Struct, frozen=True):
    id: str
    node_id: str
    node_type: str
    title: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    status: NodeStatus
    error: str | None
    elapsed_time: float
    total_tokens: int
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int
    steps: int
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)


class AgentLog(msgspec.Struct, frozen=True, kw_only=True):
    """agent_log's `data`: one log entry of an agent node's strategy (a later one with the same id updates it).
    The node yields it with an empty `node_execution_id`; the execution fills in its own."""

    node_execution_id: str = ""
    id: str
    label: str
    parent_id: str | None
    error: str | None
    status: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    node_id: str


class WorkflowFinished(msgspec.Struct, frozen=True):
    workflow_run_id: str
    status: RunStatus
    outputs: Mapping[str, Any]
    error: str | None
    elapsed_time: float
    total_tokens: int
    total_steps: int
    exceptions_count: int
    created_at: int
    finished_at: int
    files: Sequence[Mapping[str, Any]] = ()
    answer: str = ""  # chatflow: every Answer chunk of the run, concatenated
    conversation_variables: Mapping[str, Any] = msgspec.field(default_factory=dict)  # chatflow: values at the end


WorkflowEvent = (
    WorkflowStarted
    | NodeStarted
    | NodeFinished
    | NodeRetry
    | TextChunk
    | IterationStarted
    | IterationNext
    | IterationCompleted
    | LoopStarted
    | LoopNext
    | LoopCompleted
    | AgentLog
    | WorkflowFinished
)


def as_json_object(value: Any) -> Any:
    """The encoders' fallback: any Mapping (typed events' fields are) as an object; plain dicts never get here."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
