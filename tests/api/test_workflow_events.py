"""A stream's encoder writes each event as its payload would be written alone, one frame after another."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from openify.api import sse
from openify.api.workflow_events import EventFrames, StreamKeys, payload
from openify.engine.events import (
    IterationNext,
    NodeFinished,
    NodeRetry,
    NodeStarted,
    NodeStatus,
    TextChunk,
    WorkflowEvent,
    WorkflowFinished,
    WorkflowStarted,
)
from tests.api.workflow_kit import NODE_FINISHED_KEYS

WORKFLOW = StreamKeys("task", "run", "wf", "eu", "sess")
CHATFLOW = StreamKeys("task", "run", "wf", "eu", "sess", conversation_id="c", message_id="m", message_created_at=7)


def node_started(
    exec_id: str, node_id: str, node_type: str, title: str, index: int, pred: str | None, created: int, **more: Any
) -> NodeStarted:
    return NodeStarted(
        id=exec_id,
        node_id=node_id,
        node_type=node_type,
        title=title,
        index=index,
        predecessor_node_id=pred,
        created_at=created,
        **more,
    )


def node_finished(
    exec_id: str,
    node_id: str,
    node_type: str,
    title: str,
    index: int,
    pred: str | None,
    inputs: Mapping[str, Any],
    process_data: Mapping[str, Any],
    outputs: Mapping[Any, Any],
    status: NodeStatus,
    error: str | None,
    elapsed: float,
    metadata: Mapping[str, Any],
    created: int,
    done: int,
    **more: Any,
) -> NodeFinished:
    return NodeFinished(
        id=exec_id,
        node_id=node_id,
        node_type=node_type,
        title=title,
        index=index,
        predecessor_node_id=pred,
        inputs=inputs,
        process_data=process_data,
        outputs=outputs,
        status=status,
        error=error,
        elapsed_time=elapsed,
        execution_metadata=metadata,
        created_at=created,
        finished_at=done,
        **more,
    )


RETRY = NodeRetry(
    id="x1",
    node_id="n1",
    node_type="code",
    title="代码",
    index=1,
    predecessor_node_id=None,
    inputs={},
    process_data={},
    outputs={},
    error="boom",
    elapsed_time=0.1,
    execution_metadata={},
    created_at=2,
    finished_at=3,
    retry_index=0,
)

EVENTS: list[WorkflowEvent] = [
    WorkflowStarted("run", {"q": "你好"}, 1),
    node_started("x1", "n1", "code", "代码", 1, None, 2, extras=MappingProxyType({"k": 1})),
    RETRY,
    node_finished(
        "x1",
        "n1",
        "code",
        "代码",
        1,
        None,
        MappingProxyType({"a": [1, {"b": None}]}),
        {},
        {"y": 'é\n"q"'},
        "succeeded",
        None,
        0.25,
        {"total_tokens": 3},
        2,
        3,
        files=({"url": "u"},),
        iteration_id="it",
    ),
    IterationNext("it", "it", "iteration", "Loop", 0, 4),
    node_started("x2", "n2", "llm", "L", 2, "n1", 4, inputs={1: "int key"}),
    node_finished("x2", "n2", "llm", "L", 2, "n1", {}, {}, {}, "failed", "bad", 0.5, {}, 4, 5),
    TextChunk("chunk", ["n2", "text"]),
    # A title with %, quotes and CJK, inside a loop; then the same node again with other values.
    node_started("x3", "n3", "template-transform", '100% "完成"', 3, "n2", 6, loop_id="lp"),
    node_finished(
        "x3",
        "n3",
        "template-transform",
        '100% "完成"',
        3,
        "n2",
        {},
        {},
        {"o": "%s %d"},
        "exception",
        "e\u2028%",
        1e-05,
        {},
        6,
        7,
        loop_id="lp",
    ),
    node_started("x4", "n3", "template-transform", '100% "完成"', 4, "n2", 8, loop_id="lp"),
    node_finished(
        "x4",
        "n3",
        "template-transform",
        '100% "完成"',
        4,
        "n2",
        {"i": 1},
        {"p": 2},
        {},
        "exception",
        "again",
        2.5,
        {"m": 3},
        8,
        9,
        loop_id="lp",
    ),
    # msgspec refuses a bool key: this one frame is encoded the way of every other event
    node_finished("x5", "n5", "code", "C", 5, "n3", {}, {}, {True: "bool key"}, "succeeded", None, 0.5, {}, 9, 9),
    WorkflowFinished("run", "succeeded", {"o": 1}, None, 1.0, 3, 2, 0, 1, 5),
]


def frames(text: bytes) -> list[dict[str, object]]:
    parts = text.split(b"\n\n")
    assert parts[-1] == b"" and all(p.startswith(b"data: ") for p in parts[:-1])
    return [json.loads(p[6:]) for p in parts[:-1]]


def test_a_batch_is_the_frames_of_its_events() -> None:
    for keys in (WORKFLOW, CHATFLOW):
        alone = b"".join(sse.encode(p) for ev in EVENTS if (p := payload(ev, keys)) is not None)
        together = EventFrames(keys).encode(EVENTS)
        assert frames(together) == frames(alone)
        # members in Dify's order too (floats may be written in another notation, with the same value)
        assert [list(f.get("data") or f) for f in frames(together)] == [list(f.get("data") or f) for f in frames(alone)]  # type: ignore[call-overload]
        assert len(frames(together)) == len(EVENTS)
    got = frames(EventFrames(WORKFLOW).encode(EVENTS))
    started, finished = got[1], got[3]
    assert started == {
        "event": "node_started",
        "workflow_run_id": "run",
        "task_id": "task",
        "data": {
            "id": "x1",
            "node_id": "n1",
            "node_type": "code",
            "title": "代码",
            "index": 1,
            "predecessor_node_id": None,
            "inputs": None,
            "inputs_truncated": False,
            "created_at": 2,
            "extras": {"k": 1},
            "iteration_id": None,
            "loop_id": None,
            "agent_strategy": None,
        },
    }
    assert tuple(finished["data"]) == NODE_FINISHED_KEYS  # type: ignore[arg-type]  # in Dify's order
    assert list(got[2]["data"])[-2:] == ["loop_id", "retry_index"]  # type: ignore[call-overload]  # node_retry
    assert got[2]["data"]["files"] == [] and got[2]["data"]["status"] == "retry"  # type: ignore[index]
    assert finished["data"]["inputs"] == {"a": [1, {"b": None}]}  # type: ignore[index]
    assert finished["data"]["outputs"] == {"y": 'é\n"q"'}  # type: ignore[index]
    assert finished["data"]["files"] == [{"url": "u"}]  # type: ignore[index]
    assert got[5]["data"]["inputs"] == {"1": "int key"}  # type: ignore[index]  # JSON keys are strings
    assert [g["data"]["title"] for g in got[8:12]] == ['100% "完成"'] * 4  # type: ignore[index]
    assert [g["data"]["error"] for g in got[9:12:2]] == ["e\u2028%", "again"]  # type: ignore[index]
    assert got[9]["data"]["outputs"] == {"o": "%s %d"}  # type: ignore[index]
    assert got[11]["data"]["execution_metadata"] == {"m": 3}  # type: ignore[index]
    assert got[12]["data"]["outputs"] == {"true": "bool key"}  # type: ignore[index]  # as orjson writes it
    assert "代码".encode() in EventFrames(WORKFLOW).encode(EVENTS[1:2])  # raw UTF-8, as Dify's orjson writes
