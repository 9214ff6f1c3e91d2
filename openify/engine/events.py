"""Typed workflow events. Field names are Dify's (`task_entities.py`), so the SSE layer renames nothing.

`id` of NodeStarted/NodeFinished/NodeRetry is the node *execution* id; `id` of the iteration and loop
events is the node id, as in Dify. Times: `created_at`/`finished_at` Unix seconds, `elapsed_time` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

NodeStatus = Literal["succeeded", "failed", "exception"]
RunStatus = Literal["succeeded", "failed", "stopped", "partial-succeeded"]


@dataclass(frozen=True, slots=True)
class WorkflowStarted:
    workflow_run_id: str
    inputs: Mapping[str, Any]
    created_at: int


@dataclass(frozen=True, slots=True)
class NodeStarted:
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    created_at: int
    iteration_id: str | None = None
    loop_id: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] | None = None  # Dify sends null at start


@dataclass(frozen=True, slots=True)
class NodeFinished:
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: Mapping[str, Any]
    process_data: Mapping[str, Any]
    outputs: Mapping[str, Any]
    status: NodeStatus
    error: str | None
    elapsed_time: float
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int
    files: Sequence[Mapping[str, Any]] = ()
    iteration_id: str | None = None
    loop_id: str | None = None


@dataclass(frozen=True, slots=True)
class NodeRetry:
    """A failed attempt that will be retried; `status` is always "retry"."""

    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    inputs: Mapping[str, Any]
    process_data: Mapping[str, Any]
    outputs: Mapping[str, Any]
    error: str
    elapsed_time: float
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int
    retry_index: int
    status: str = "retry"
    iteration_id: str | None = None
    loop_id: str | None = None


@dataclass(frozen=True, slots=True)
class TextChunk:
    """Streamed output of an End (workflow: `text_chunk`) or Answer node (chatflow: `message`)."""

    text: str
    from_variable_selector: Sequence[str]
    node_id: str = ""  # the response node streaming it


@dataclass(frozen=True, slots=True)
class IterationStarted:
    id: str
    node_id: str
    node_type: str
    title: str
    created_at: int
    inputs: Mapping[str, Any]
    metadata: Mapping[str, Any]
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IterationNext:
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    created_at: int
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IterationCompleted:
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
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoopStarted:
    id: str
    node_id: str
    node_type: str
    title: str
    created_at: int
    inputs: Mapping[str, Any]
    metadata: Mapping[str, Any]
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoopNext:
    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    created_at: int
    pre_loop_output: Any = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoopCompleted:
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
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkflowFinished:
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
    conversation_variables: Mapping[str, Any] = field(default_factory=dict)  # chatflow: values at the end


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
    | WorkflowFinished
)
