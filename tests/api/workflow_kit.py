"""Small workflow DSLs and SSE parsing for the workflow API tests."""

from __future__ import annotations

import json
from typing import Any

import httpx
import yaml

# node_started's and node_finished's `data` members, in Dify's order (task_entities.py)
NODE_STARTED_KEYS = (
    "id",
    "node_id",
    "node_type",
    "title",
    "index",
    "predecessor_node_id",
    "inputs",
    "inputs_truncated",
    "created_at",
    "extras",
    "iteration_id",
    "loop_id",
    "agent_strategy",
)
NODE_FINISHED_KEYS = (
    *NODE_STARTED_KEYS[:8],  # id ... inputs_truncated
    "process_data",
    "process_data_truncated",
    "outputs",
    "outputs_truncated",
    "status",
    "error",
    "elapsed_time",
    "execution_metadata",
    "created_at",
    "finished_at",
    "files",
    "iteration_id",
    "loop_id",
)


def dsl(nodes: list[dict[str, Any]], edges: list[tuple[str, str]], mode: str = "workflow", **workflow: Any) -> str:
    """A DSL file of `nodes` ({id, type, ...data}) joined by `edges` (source, target)."""
    graph_nodes = [
        {"id": n["id"], "type": "custom", "data": {"title": n["id"], **{k: v for k, v in n.items() if k != "id"}}}
        for n in nodes
    ]
    graph_edges = [
        {"id": f"{s}-{t}", "source": s, "target": t, "sourceHandle": "source", "targetHandle": "target"}
        for s, t in edges
    ]
    doc = {
        "app": {"mode": mode, "name": "test workflow", "description": "", "icon": "🤖", "icon_background": "#fff"},
        "kind": "app",
        "version": "0.3.1",
        "workflow": {"graph": {"nodes": graph_nodes, "edges": graph_edges}, "features": {}, **workflow},
    }
    return yaml.safe_dump(doc, allow_unicode=True)


def start(*variables: dict[str, Any]) -> dict[str, Any]:
    return {"id": "start", "type": "start", "variables": list(variables)}


def text_input(name: str, required: bool = True) -> dict[str, Any]:
    return {"variable": name, "label": name, "type": "text-input", "required": required, "max_length": 48}


def code(node_id: str, source: str, inputs: dict[str, list[str]], outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "code",
        "code_language": "python3",
        "code": source,
        "variables": [{"variable": k, "value_selector": v} for k, v in inputs.items()],
        "outputs": {k: {"type": t, "children": None} for k, t in outputs.items()},
    }


def template(node_id: str, text: str, inputs: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "template-transform",
        "template": text,
        "variables": [{"variable": k, "value_selector": v} for k, v in inputs.items()],
    }


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "outputs": [{"variable": k, "value_selector": v} for k, v in outputs.items()]}


def sse_events(text: str) -> list[dict[str, Any]]:
    """Frames of an SSE body: `{"event": "ping"}` for a ping, else the data JSON."""
    out: list[dict[str, Any]] = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        if frame.startswith("event: ping"):
            out.append({"event": "ping"})
            continue
        assert frame.startswith("data: "), frame
        out.append(json.loads(frame[len("data: ") :]))
    return out


class EventReader:
    """Reads a streaming response frame by frame, across several calls."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_text()
        self._buf = ""
        self.seen: list[dict[str, Any]] = []

    async def until(self, event: str | None = None) -> list[dict[str, Any]]:
        """Frames up to and including the next `event` (all remaining ones when None)."""
        out: list[dict[str, Any]] = []
        while True:
            while "\n\n" in self._buf:
                frame, self._buf = self._buf.split("\n\n", 1)
                got = sse_events(frame + "\n\n")
                out.extend(got)
                self.seen.extend(got)
                if event is not None and got and got[-1]["event"] == event:
                    return out
            try:
                self._buf += await anext(self._chunks)
            except StopAsyncIteration:
                return out


# A workflow that echoes its input through a template; the chain used by most tests.
ECHO = dsl(
    [
        start(text_input("name")),
        template("greet", "Hello {{ name }}!", {"name": ["start", "name"]}),
        end(greeting=["greet", "output"]),
    ],
    [("start", "greet"), ("greet", "end")],
)

# A code node that sleeps, so a test can act while the run is live.
SLOW = dsl(
    [
        start(text_input("name", required=False)),
        code(
            "nap",
            "import time\ndef main() -> dict:\n    time.sleep(2)\n    return {'done': 'yes'}\n",
            {},
            {"done": "string"},
        ),
        end(done=["nap", "done"]),
    ],
    [("start", "nap"), ("nap", "end")],
)

FAILING = dsl(
    [
        start(),
        code("boom", "def main() -> dict:\n    raise ValueError('kaboom')\n", {}, {"x": "string"}),
        end(x=["boom", "x"]),
    ],
    [("start", "boom"), ("boom", "end")],
)
