"""`if-else`: the first case whose conditions hold picks its handle; none picks `false`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.conditions import check_conditions
from openify.engine.node import Node, NodeContext, NodeResult


def _s(value: Any) -> str:
    if isinstance(value, bool):  # unquoted `true` in YAML
        return "true" if value else "false"
    return "true" if value is None else str(value)


class IfElseNode(Node):
    type = "if-else"
    is_branch = True
    __slots__ = ("_cases",)

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        cases = self.data.get("cases")
        if not cases:  # legacy (DSL 0.1.0): top-level conditions form one case `true`
            cases = [
                {
                    "case_id": "true",
                    "logical_operator": self.data.get("logical_operator", "and"),
                    "conditions": self.data.get("conditions") or [],
                }
            ]
        self._cases = [
            (
                _s(c.get("case_id", c.get("id"))),
                str(c.get("logical_operator") or "and"),
                [x for x in c.get("conditions") or [] if isinstance(x, Mapping)],
            )
            for c in cases
            if isinstance(c, Mapping)
        ]

    async def run(self, ctx: NodeContext) -> NodeResult:
        for case_id, logical, conds in self._cases:
            if check_conditions(conds, logical, ctx.pool):
                return NodeResult(
                    outputs={"result": True, "selected_case_id": case_id},
                    handle=case_id,
                    process_data={"condition_results": [{"case_id": case_id, "result": True}]},
                )
        return NodeResult(outputs={"result": False, "selected_case_id": "false"}, handle="false")


def register(r: Any) -> None:
    r.nodes.register(IfElseNode.type, IfElseNode)
