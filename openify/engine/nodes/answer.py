"""`answer` (chatflow): renders its template; the engine streams it as its parts become ready."""

from __future__ import annotations

from typing import Any

from openify.engine.node import Node, NodeContext, NodeResult
from openify.engine.streaming import response_value
from openify.engine.variables import files_in, template_segments


class AnswerNode(Node):
    type = "answer"
    is_response = True
    __slots__ = ("_segments",)

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._segments = template_segments(str(self.data.get("answer") or ""))

    def response_segments(self) -> list[str | list[str]]:
        return self._segments

    async def run(self, ctx: NodeContext) -> NodeResult:
        text = response_value(ctx.pool, self._segments)
        files = [f for seg in self._segments if isinstance(seg, list) for f in files_in(ctx.pool.get(seg))]
        return NodeResult(outputs={"answer": text, "files": files}, files=files)


def register(r: Any) -> None:
    r.nodes.register(AnswerNode.type, AnswerNode)
