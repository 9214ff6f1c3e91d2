"""`variable-aggregator` (legacy name `variable-assigner`): the first selector holding a value, per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeResult, selector


class VariableAggregatorNode(Node):
    type = "variable-aggregator"

    @staticmethod
    def _first(ctx: NodeContext, selectors: Any) -> Any:
        for raw in selectors or []:
            sel = selector(raw)
            if ctx.pool.has(sel):
                value = ctx.pool.get(sel)
                if value is not None:
                    return value
        return None

    async def run(self, ctx: NodeContext) -> NodeResult:
        adv = self.data.get("advanced_settings") or {}
        if isinstance(adv, Mapping) and adv.get("group_enabled"):
            outputs = {
                str(g.get("group_name")): {"output": self._first(ctx, g.get("variables"))}
                for g in adv.get("groups") or []
                if isinstance(g, Mapping)
            }
        else:
            outputs = {"output": self._first(ctx, self.data.get("variables"))}
        return NodeResult(outputs=outputs)


class LegacyVariableAssignerNode(VariableAggregatorNode):
    type = "variable-assigner"


def register(r: Any) -> None:
    r.nodes.register(VariableAggregatorNode.type, VariableAggregatorNode)
    r.nodes.register(LegacyVariableAssignerNode.type, LegacyVariableAssignerNode)
