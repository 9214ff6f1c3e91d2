"""`loop`: runs its subgraph round after round until a break condition holds, `loop-end` is reached
or `loop_count` rounds ran. Loop variables live at `[loop_id, label]` and persist across rounds."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openify.engine.conditions import check_conditions
from openify.engine.events import LoopCompleted, LoopNext, LoopStarted
from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector


def _initial(var: Mapping[str, Any], ctx: NodeContext) -> Any:
    value = var.get("value")
    if var.get("value_type") == "variable":
        return ctx.pool.get(selector(value))
    kind = str(var.get("var_type") or "string")
    if value is None:
        return None
    if kind == "number" and isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            raise NodeError(f"Loop variable {var.get('label')}: {value!r} is not a number.") from None
    if kind == "boolean" and isinstance(value, str):
        return value.strip().lower() == "true"
    if (kind == "object" or kind.startswith("array")) and isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else ([] if kind.startswith("array") else {})
        except ValueError:
            raise NodeError(f"Loop variable {var.get('label')}: invalid JSON.") from None
    return value


class LoopNode(Node):
    type = "loop"
    is_container = True

    async def stream(self, ctx: NodeContext) -> AsyncIterator[Any]:
        d = self.data
        created, t0, tokens0 = int(time.time()), time.perf_counter(), ctx.run.total_tokens
        count = int(d.get("loop_count") or 0)
        labels = []
        for var in d.get("loop_variables") or []:
            if isinstance(var, Mapping) and var.get("label"):
                labels.append(str(var["label"]))
                ctx.pool.add(self.id, str(var["label"]), _initial(var, ctx))
        conds = [c for c in d.get("break_conditions") or [] if isinstance(c, Mapping)]
        logical = str(d.get("logical_operator") or "and")
        inputs = {"loop_count": count}
        base = (self.id, self.id, self.type, self.title)
        yield LoopStarted(*base, created, inputs, {"loop_length": count})
        owned = [n.id for n in ctx.execution.runner.graph.children(self.id)]
        start = str(d.get("start_node_id"))
        rounds, error = 0, None
        durations: dict[str, float] = {}
        variables: dict[str, dict[str, Any]] = {}
        try:
            stop = bool(conds) and check_conditions(conds, logical, ctx.pool, strict=False)
            while not stop and rounds < count:
                if ctx.run.stopped:
                    break
                yield LoopNext(*base, rounds, int(time.time()), {k: ctx.pool.get([self.id, k]) for k in labels})
                pool = ctx.pool.child(owned)
                child = ctx.child_run(start, pool, {"loop_id": self.id, "loop_index": rounds})
                began = time.perf_counter()
                async for ev in child.events():
                    yield ev
                durations[str(rounds)] = time.perf_counter() - began
                variables[str(rounds)] = {k: ctx.pool.get([self.id, k]) for k in labels}
                rounds += 1
                if child.error is not None:
                    error = child.error
                    break
                if "loop-end" in child.reached:
                    break
                stop = bool(conds) and check_conditions(conds, logical, pool, strict=False)
        except NodeError as exc:
            error = str(exc)
        outputs: dict[str, Any] = {k: ctx.pool.get([self.id, k]) for k in labels}
        outputs["loop_round"] = rounds
        yield LoopCompleted(
            *base,
            inputs,
            {} if error else outputs,
            "failed" if error else "succeeded",
            error,
            time.perf_counter() - t0,
            ctx.run.total_tokens - tokens0,
            {
                "loop_duration_map": durations,
                "loop_variable_map": variables,
                "total_tokens": ctx.run.total_tokens - tokens0,
            },
            created,
            int(time.time()),
            rounds,
        )
        if error:
            raise NodeError(error, "LoopNodeError")
        yield NodeResult(outputs=outputs, inputs=inputs, metadata={"total_tokens": ctx.run.total_tokens - tokens0})


def register(r: Any) -> None:
    r.nodes.register(LoopNode.type, LoopNode)
