"""`list-operator`: filter, extract, order and limit an array (files by attribute)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.conditions import compare, file_attr
from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector
from openify.engine.variables import is_file


def _item_value(item: Any, key: str) -> Any:
    if is_file(item) or (isinstance(item, Mapping) and key):
        return file_attr(item, key) if key else item
    return item


def _expected(item: Any, key: str, value: Any) -> Any:
    if isinstance(value, str) and isinstance(_item_value(item, key), int | float) and not isinstance(value, bool):
        return value  # compare() casts numbers itself
    if key == "extension" and isinstance(value, str) and value and not value.startswith("."):
        return "." + value
    return value


class ListOperatorNode(Node):
    type = "list-operator"

    async def run(self, ctx: NodeContext) -> NodeResult:
        d = self.data
        sel = selector(d.get("variable"))
        items = ctx.pool.get(sel)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise NodeError(f"Variable {'.'.join(sel)} is not an array.", "InvalidFilterValueError")
        inputs = {"variable": items}
        out = list(items)
        flt = d.get("filter_by") or {}
        if flt.get("enabled"):
            for c in flt.get("conditions") or []:
                key, op = str(c.get("key") or ""), str(c.get("comparison_operator") or "")
                raw = c.get("value")
                value = ctx.pool.render(raw) if isinstance(raw, str) else raw
                out = [x for x in out if compare(_item_value(x, key), op, _expected(x, key, value))]
        ext = d.get("extract_by") or {}
        if ext.get("enabled"):
            serial = ctx.pool.render(str(ext.get("serial") or "1"))
            try:
                n = int(serial)
            except ValueError:
                raise NodeError(f"Invalid serial index: {serial!r}", "InvalidSerialValueError") from None
            if n < 1 or n > len(out):
                raise NodeError(f"Serial index {n} is out of range.", "InvalidSerialValueError")
            out = [out[n - 1]]
        order = d.get("order_by") or {}
        if order.get("enabled"):
            key = str(order.get("key") or "")
            out.sort(
                key=lambda x: (_item_value(x, key) is None, _item_value(x, key)), reverse=order.get("value") == "desc"
            )
        limit = d.get("limit") or {}
        if limit.get("enabled"):
            out = out[: max(0, int(limit.get("size") or 0))]
        outputs = {"result": out, "first_record": out[0] if out else None, "last_record": out[-1] if out else None}
        return NodeResult(outputs=outputs, inputs=inputs)


def register(r: Any) -> None:
    r.nodes.register(ListOperatorNode.type, ListOperatorNode)
