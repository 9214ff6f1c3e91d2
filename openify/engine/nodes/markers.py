"""`iteration-start`, `loop-start` and `loop-end`: structural nodes that do nothing but mark a place."""

from __future__ import annotations

from typing import Any

from openify.engine.node import Node, NodeContext, NodeResult


class IterationStartNode(Node):
    type = "iteration-start"

    async def run(self, ctx: NodeContext) -> NodeResult:  # noqa: ARG002 - a marker reads nothing
        return NodeResult()


class LoopStartNode(IterationStartNode):
    type = "loop-start"


class LoopEndNode(IterationStartNode):
    """Reaching it ends the loop after the current round (the loop node checks what ran)."""

    type = "loop-end"


def register(r: Any) -> None:
    for cls in (IterationStartNode, LoopStartNode, LoopEndNode):
        r.nodes.register(cls.type, cls)
