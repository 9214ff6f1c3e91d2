"""Engine overhead per node: a chain of 200 template nodes, and a 10,000-item iteration.

Prints microseconds per node. The template nodes render a constant, so the time is the engine's:
scheduling, events, pool writes, and a cached Jinja2 render. Run: python bench/workflow_engine.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout, not an installed copy

from openify.engine.graph import parse_graph
from openify.engine.runner import RunLimits, WorkflowRunner
from openify.plugins import build_registries

TARGET_US = 200.0


def chain(n: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "n0", "data": {"type": "start", "title": "S", "variables": []}}]
    edges = []
    for i in range(1, n + 1):
        nodes.append(
            {
                "id": f"n{i}",
                "data": {"type": "template-transform", "title": f"T{i}", "template": f"{i}", "variables": []},
            }
        )
        edges.append({"source": f"n{i - 1}", "target": f"n{i}"})
    nodes.append(
        {
            "id": "end",
            "data": {
                "type": "end",
                "title": "E",
                "outputs": [{"variable": "o", "value_selector": [f"n{n}", "output"]}],
            },
        }
    )
    edges.append({"source": f"n{n}", "target": "end"})
    return {"app": {"mode": "workflow"}, "workflow": {"graph": {"nodes": nodes, "edges": edges}}}


def iteration(n: int) -> dict[str, Any]:
    return {
        "app": {"mode": "workflow"},
        "workflow": {
            "environment_variables": [{"name": "items", "value_type": "string", "value": list(range(n))}],
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    {
                        "id": "it",
                        "data": {
                            "type": "iteration",
                            "title": "It",
                            "iterator_selector": ["env", "items"],
                            "output_selector": ["t", "output"],
                            "start_node_id": "itstart",
                        },
                    },
                    {"id": "itstart", "parentId": "it", "data": {"type": "iteration-start", "title": ""}},
                    {
                        "id": "t",
                        "parentId": "it",
                        "data": {
                            "type": "template-transform",
                            "title": "T",
                            "template": "{{ x }}",
                            "variables": [{"variable": "x", "value_selector": ["it", "item"]}],
                        },
                    },
                    {
                        "id": "e",
                        "data": {
                            "type": "end",
                            "title": "E",
                            "outputs": [{"variable": "o", "value_selector": ["it", "output"]}],
                        },
                    },
                ],
                "edges": [
                    {"source": "s", "target": "it"},
                    {"source": "itstart", "target": "t"},
                    {"source": "it", "target": "e"},
                ],
            },
        },
    }


async def timed(runner: WorkflowRunner) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    count = 0
    status = ""
    async for ev in runner.start({}).events():
        count += 1
        status = getattr(ev, "status", status)
    return time.perf_counter() - t0, count, status


async def main() -> None:
    r = build_registries()
    limits = RunLimits(max_steps=1_000_000)
    runner = WorkflowRunner(parse_graph(chain(200)), r, limits=limits)
    await timed(runner)  # warm-up: compiles the templates once, as a long-lived server would have
    runs = [await timed(runner) for _ in range(20)]
    best = min(t for t, _, _ in runs)
    med = statistics.median(t for t, _, _ in runs)
    nodes = 202
    print(f"chain of 200 template nodes: {nodes} nodes, {runs[0][1]} events, status {runs[0][2]}")
    print(f"  per node: median {med / nodes * 1e6:.1f} us, best {best / nodes * 1e6:.1f} us (target < {TARGET_US:.0f})")

    runner = WorkflowRunner(parse_graph(iteration(10_000)), r, limits=limits)
    elapsed, events, status = await timed(runner)
    inner = 10_000 * 2  # iteration-start + template per item
    print(f"iteration over 10,000 items: {elapsed:.2f} s, {events} events, status {status}")
    print(f"  per inner node: {elapsed / inner * 1e6:.1f} us (target < {TARGET_US:.0f})")


if __name__ == "__main__":
    asyncio.run(main())
