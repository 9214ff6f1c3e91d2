"""`iteration`: runs its subgraph once per item of an array, in order or `parallel_nums` at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from openify.engine.events import IterationCompleted, IterationNext, IterationStarted
from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector

_DONE = object()


class IterationNode(Node):
    type = "iteration"
    is_container = True

    async def stream(self, ctx: NodeContext) -> AsyncIterator[Any]:
        d = self.data
        items = ctx.pool.get(selector(d.get("iterator_selector")))
        created, t0, tokens0 = int(time.time()), time.perf_counter(), ctx.run.total_tokens
        inputs = {"iterator_selector": items}
        n = len(items) if isinstance(items, list) else 0
        base = (self.id, self.id, self.type, self.title)
        yield IterationStarted(*base, created, inputs, {"iterator_length": n})
        results: list[Any] = []
        durations: dict[str, float] = {}
        error: str | None = None
        if items is not None and not isinstance(items, list):
            error = f"Invalid iterator value: {items!r}, please provide a list."
        elif n:
            mode = str(d.get("error_handle_mode") or "terminated")
            out_sel = selector(d.get("output_selector"))
            owned = [n.id for n in ctx.execution.runner.graph.children(self.id)]
            start = str(d.get("start_node_id"))
            slots: list[Any] = [None] * n
            dropped: set[int] = set()

            seq: list[Any] = list(items or ())

            def pool_for(i: int) -> Any:
                pool = ctx.pool.child(owned)
                pool.set_local(self.id, "item", seq[i])
                pool.set_local(self.id, "index", i)
                return pool

            if d.get("is_parallel") and n > 1:
                queue: asyncio.Queue[Any] = asyncio.Queue()
                sem = asyncio.Semaphore(max(1, min(int(d.get("parallel_nums") or 10), 100)))
                failed: list[str] = []

                async def one(i: int) -> None:
                    async with sem:
                        if failed and mode == "terminated":
                            return
                        queue.put_nowait(IterationNext(*base, i, int(time.time())))
                        pool = pool_for(i)
                        child = ctx.child_run(start, pool, {"iteration_id": self.id, "iteration_index": i})
                        began = time.perf_counter()
                        async for ev in child.events():
                            queue.put_nowait(ev)
                        durations[str(i)] = time.perf_counter() - began
                        if child.error is not None:
                            failed.append(child.error)
                            if mode == "remove-abnormal-output":
                                dropped.add(i)
                        else:
                            slots[i] = pool.get(out_sel)

                async def all_items() -> None:
                    try:
                        await asyncio.gather(*(one(i) for i in range(n)))
                    finally:
                        queue.put_nowait(_DONE)

                runner = asyncio.create_task(all_items())
                try:
                    while (ev := await queue.get()) is not _DONE:
                        yield ev
                finally:
                    if not runner.done():
                        runner.cancel()
                    await asyncio.gather(runner, return_exceptions=True)
                if failed and mode == "terminated":
                    error = failed[0]
            else:
                for i in range(n):
                    yield IterationNext(*base, i, int(time.time()))
                    pool = pool_for(i)
                    child = ctx.child_run(start, pool, {"iteration_id": self.id, "iteration_index": i})
                    began = time.perf_counter()
                    async for ev in child.events():
                        yield ev
                    durations[str(i)] = time.perf_counter() - began
                    if child.error is not None:
                        if mode == "terminated":
                            error = child.error
                            break
                        if mode == "remove-abnormal-output":
                            dropped.add(i)
                    else:
                        slots[i] = pool.get(out_sel)
            results = [v for i, v in enumerate(slots) if i not in dropped]
            if d.get("flatten_output", True) and results and all(isinstance(v, list) for v in results):
                results = [x for v in results for x in v]
        outputs = {"output": results}
        yield IterationCompleted(
            *base,
            inputs,
            {} if error else outputs,
            "failed" if error else "succeeded",
            error,
            time.perf_counter() - t0,
            ctx.run.total_tokens - tokens0,
            {"iteration_duration_map": durations, "total_tokens": ctx.run.total_tokens - tokens0},
            created,
            int(time.time()),
            n,
        )
        if error:
            raise NodeError(error, "IterationNodeError")
        yield NodeResult(outputs=outputs, inputs=inputs, metadata={"total_tokens": ctx.run.total_tokens - tokens0})


def register(r: Any) -> None:
    r.nodes.register(IterationNode.type, IterationNode)
