"""`end`: the workflow's outputs, each read at its selector; streams them as text chunks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeResult, selector


class EndNode(Node):
    type = "end"
    is_response = True

    def _outputs(self) -> list[tuple[str, list[str]]]:
        out = []
        for item in self.data.get("outputs") or []:
            if isinstance(item, Mapping) and item.get("variable"):
                out.append((str(item["variable"]), selector(item.get("value_selector"))))
        return out

    def response_segments(self) -> list[str | list[str]]:
        # Dify streams an End node as its output variables joined by newlines (Template.from_end_outputs).
        segments: list[str | list[str]] = []
        for _, sel in self._outputs():
            if not sel:
                continue
            if segments:
                segments.append("\n")
            segments.append(sel)
        return segments

    async def run(self, ctx: NodeContext) -> NodeResult:
        outputs = {name: ctx.pool.get(sel) for name, sel in self._outputs()}
        return NodeResult(outputs=outputs, inputs=outputs)


def register(r: Any) -> None:
    r.nodes.register(EndNode.type, EndNode)
