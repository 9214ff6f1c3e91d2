"""A stream's encoder writes each event as its payload would be written alone, one frame after another."""

from __future__ import annotations

import json
from types import MappingProxyType

from openify.api import sse
from openify.api.workflow_events import EventFrames, StreamKeys, payload
from openify.engine.events import (
    IterationNext,
    NodeFinished,
    NodeRetry,
    NodeStarted,
    TextChunk,
    WorkflowEvent,
    WorkflowFinished,
    WorkflowStarted,
)
from tests.api.workflow_kit import NODE_FINISHED_KEYS

WORKFLOW = StreamKeys("task", "run", "wf", "eu", "sess")
CHATFLOW = StreamKeys("task", "run", "wf", "eu", "sess", conversation_id="c", message_id="m", message_created_at=7)

EVENTS: list[WorkflowEvent] = [
    WorkflowStarted("run", {"q": "你好"}, 1),
    NodeStarted("x1", "n1", "code", "代码", 1, None, 2, extras=MappingProxyType({"k": 1})),
    NodeRetry("x1", "n1", "code", "代码", 1, None, {}, {}, {}, "boom", 0.1, {}, 2, 3, 0),
    NodeFinished(
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
        ({"url": "u"},),
        iteration_id="it",
    ),
    IterationNext("it", "it", "iteration", "Loop", 0, 4),
    NodeStarted("x2", "n2", "llm", "L", 2, "n1", 4, inputs={1: "int key"}),
    NodeFinished("x2", "n2", "llm", "L", 2, "n1", {}, {}, {}, "failed", "bad", 0.5, {}, 4, 5),
    TextChunk("chunk", ["n2", "text"]),
    # A title with %, quotes and CJK, inside a loop; then the same node again with other values.
    NodeStarted("x3", "n3", "template-transform", '100% "完成"', 3, "n2", 6, loop_id="lp"),
    NodeFinished(
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
    NodeStarted("x4", "n3", "template-transform", '100% "完成"', 4, "n2", 8, loop_id="lp"),
    NodeFinished(
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
    NodeFinished("x5", "n5", "code", "C", 5, "n3", {}, {}, {True: "bool key"}, "succeeded", None, 0.5, {}, 9, 9),
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
