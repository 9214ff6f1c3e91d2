"""`assigner`: writes conversation (or loop) variables. v1: one write_mode; v2: a list of operations."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector

_EMPTY: dict[str, Any] = {"string": "", "number": 0, "integer": 0, "float": 0.0, "object": {}, "boolean": False}


def _cleared(current: Any) -> Any:
    if isinstance(current, bool):
        return False
    if isinstance(current, str):
        return ""
    if isinstance(current, int | float):
        return 0
    if isinstance(current, Mapping):
        return {}
    if isinstance(current, list):
        return []
    return None


def apply(op: str, current: Any, value: Any) -> Any:
    """One v2 operation on the current value; raises NodeError on a type mismatch."""
    if op == "over-write":
        return value
    if op == "clear":
        return _cleared(current)
    if op == "set":
        if isinstance(current, Mapping) and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise NodeError("Invalid JSON for an object variable.", "InvalidInputValue") from None
        if isinstance(current, bool) and isinstance(value, str):
            return value.strip().lower() == "true"
        if isinstance(current, int | float) and not isinstance(current, bool) and isinstance(value, str):
            return float(value) if "." in value else int(value)
        return value
    if op in ("+=", "-=", "*=", "/="):
        if not isinstance(current, int | float) or isinstance(current, bool):
            raise NodeError(f"Operation {op} needs a number variable.", "InvalidDataType")
        try:
            num = (
                float(value)
                if isinstance(value, str) and "." in value
                else (int(value) if isinstance(value, str) else value)
            )
        except ValueError:
            raise NodeError(f"{value!r} is not a number.", "InvalidInputValue") from None
        if not isinstance(num, int | float):
            raise NodeError(f"{value!r} is not a number.", "InvalidInputValue")
        if op == "+=":
            return current + num
        if op == "-=":
            return current - num
        if op == "*=":
            return current * num
        if num == 0:
            raise NodeError("Division by zero.", "InvalidInputValue")
        return current / num
    if op in ("append", "extend", "remove-first", "remove-last"):
        if not isinstance(current, list):
            raise NodeError(f"Operation {op} needs an array variable.", "InvalidDataType")
        if op == "append":
            return [*current, value]
        if op == "extend":
            if not isinstance(value, list):
                raise NodeError("extend needs an array value.", "InvalidInputValue")
            return [*current, *value]
        if op == "remove-first":
            return current[1:]
        return current[:-1]
    raise NodeError(f"Unsupported operation: {op!r}.", "OperationNotSupported")


def fits(value_type: str, value: Any) -> bool:
    """Whether `value` may be stored in a variable declared `value_type` (Dify refuses other writes)."""
    kind = value_type.lower()
    if value is None or kind in ("", "any", "array[any]"):
        return True
    if kind == "string" or kind == "secret":
        return isinstance(value, str)
    if kind in ("number", "integer", "float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind.startswith("array"):
        inner = kind[6:-1] if kind.startswith("array[") else "any"
        return isinstance(value, list) and all(fits(inner, v) for v in value)
    return True


async def write(ctx: NodeContext, sel: list[str], value: Any) -> None:
    if len(sel) < 2:
        raise NodeError("The assigned variable selector is empty.", "VariableNotFound")
    if sel[0] == "conversation":
        declared = ctx.execution.runner.conversation_types.get(sel[1])
        if declared is not None and not fits(declared, value):
            raise NodeError(
                f"Value of type {type(value).__name__} cannot be assigned to {declared} variable "
                f"conversation.{sel[1]}.",
                "InvalidDataType",
            )
        await ctx.run.set_conversation_variable(sel[1], value)
    else:
        ctx.pool.add(sel[0], sel[1], value)


class AssignerNode(Node):
    type = "assigner"

    def _items(self) -> list[tuple[list[str], str, str, Any]]:
        if str(self.data.get("version") or "1") != "2":
            mode = str(self.data.get("write_mode") or "over-write")
            return [
                (
                    selector(self.data.get("assigned_variable_selector")),
                    mode,
                    "variable",
                    self.data.get("input_variable_selector"),
                )
            ]
        return [
            (
                selector(i.get("variable_selector")),
                str(i.get("operation") or "over-write"),
                str(i.get("input_type") or "variable"),
                i.get("value"),
            )
            for i in self.data.get("items") or []
            if isinstance(i, Mapping)
        ]

    def writes(self) -> list[list[str]]:
        return [sel for sel, *_ in self._items()]

    async def run(self, ctx: NodeContext) -> NodeResult:
        changed: dict[str, Any] = {}
        for sel, op, input_type, raw in self._items():
            if not ctx.pool.has(sel[:2]):
                raise NodeError(f"Variable {'.'.join(sel)} not found.", "VariableNotFound")
            current = ctx.pool.get(sel[:2])
            if op in ("clear", "remove-first", "remove-last"):
                value = None
            elif input_type == "variable":
                value = ctx.pool.get(selector(raw))
                if value is None:  # Dify skips an item whose input variable is None
                    continue
            else:
                value = raw
            if op == "append" and str(self.data.get("version") or "1") != "2" and not isinstance(current, list):
                raise NodeError("append needs an array variable.", "InvalidDataType")
            new = apply(op, current, value)
            await write(ctx, sel[:2], new)
            changed[".".join(sel[:2])] = new
        return NodeResult(process_data={"updated_variables": changed})


def register(r: Any) -> None:
    r.nodes.register(AssignerNode.type, AssignerNode)
