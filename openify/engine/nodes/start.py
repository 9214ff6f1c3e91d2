"""`start`: checks the run's inputs against the declared form and publishes them (plus `sys.*` copies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult
from openify.engine.variables import is_file

_TEXT = ("text-input", "paragraph", "select")


def _number(name: str, value: Any) -> int | float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise NodeError(f"{name} in input form must be a valid number")
    if isinstance(value, int | float):
        return value
    s = str(value).strip()
    try:
        return float(s) if "." in s or "e" in s.lower() else int(s)
    except ValueError:
        raise NodeError(f"{name} in input form must be a valid number") from None


def _checkbox(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("true", "1", "yes", "on"):
        return True
    if s in ("false", "0", "no", "off", ""):
        return False
    raise NodeError(f"{name} in input form must be a boolean")


def check_input(var: Mapping[str, Any], value: Any) -> Any:
    """One declared input, checked and converted as Dify's _prepare_user_inputs does."""
    name, kind = str(var.get("variable")), var.get("type", "text-input")
    if value is None or (value == "" and kind not in _TEXT):
        if var.get("required"):
            raise NodeError(f"{name} is required in input form")
        default = var.get("default")
        if default in (None, ""):
            return None if kind not in _TEXT or default is None else default
        value = default
    if kind in _TEXT:
        if not isinstance(value, str):
            raise NodeError(f"{name} in input form must be a string")
        value = value.replace("\x00", "")
        if kind == "select" and value and var.get("options") and value not in var["options"]:
            raise NodeError(f"{name} in input form must be one of the following: {var['options']}")
        limit = var.get("max_length")
        if limit and kind != "select" and len(value) > int(limit):
            raise NodeError(f"{name} in input form must be less than {limit} characters")
        return value
    if kind == "number":
        return _number(name, value)
    if kind == "checkbox":
        return _checkbox(name, value)
    if kind == "json_object":
        if not isinstance(value, Mapping):
            raise NodeError(f"{name} in input form must be an object")
        return dict(value)
    if kind == "file":
        if not is_file(value) and not isinstance(value, Mapping):
            raise NodeError(f"{name} in input form must be a file")
        return value
    if kind == "file-list":
        if not isinstance(value, list):
            raise NodeError(f"{name} in input form must be a list of files")
        limit = var.get("max_length")
        if limit and len(value) > int(limit):
            raise NodeError(f"{name} in input form must have at most {limit} files")
        return value
    return value


class StartNode(Node):
    type = "start"

    async def run(self, ctx: NodeContext) -> NodeResult:
        given = ctx.run.inputs
        outputs: dict[str, Any] = {}
        for var in self.data.get("variables") or []:
            if isinstance(var, Mapping) and var.get("variable"):
                outputs[str(var["variable"])] = check_input(var, given.get(str(var["variable"])))
        inputs = dict(outputs)
        for k, v in ctx.pool.node_values("sys").items():
            outputs[f"sys.{k}"] = v
        return NodeResult(outputs=outputs, inputs=inputs)


def register(r: Any) -> None:
    r.nodes.register(StartNode.type, StartNode)
