"""`code`: Python 3 or JavaScript through the sandbox port; outputs checked against the declared types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult
from openify.engine.nodes.template_transform import variables

# Dify's CODE_* limits (workflow-dsl.md §9).
MAX_STRING_LENGTH = 400_000
MAX_NUMBER, MIN_NUMBER = 9_223_372_036_854_775_807, -9_223_372_036_854_775_808
MAX_PRECISION = 20
MAX_DEPTH = 5
MAX_ARRAY = {"string": 30, "object": 30, "number": 1000, "boolean": 1000}


class CodeOutputError(NodeError):
    error_type = "OutputValidationError"


def _check_string(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CodeOutputError(f"Output {name} must be a string, got {type(value).__name__} instead.")
    if len(value) > MAX_STRING_LENGTH:
        raise CodeOutputError(
            f"The length of output variable `{name}` must be less than {MAX_STRING_LENGTH} characters"
        )
    return value.replace("\x00", "")


def _check_number(name: str, value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)  # Dify turns booleans declared `number` into 0/1
    if not isinstance(value, int | float):
        raise CodeOutputError(f"Output {name} must be a number, got {type(value).__name__} instead.")
    if value > MAX_NUMBER or value < MIN_NUMBER:
        raise CodeOutputError(f"Output {name} is out of range, it must be between {MIN_NUMBER} and {MAX_NUMBER}.")
    if isinstance(value, float):
        return round(value, MAX_PRECISION)
    return int(value)


def _check_depth(name: str, value: Any, depth: int = 1) -> None:
    if depth > MAX_DEPTH:
        raise CodeOutputError(f"Depth limit {MAX_DEPTH} reached, object too deep.")
    if isinstance(value, Mapping):
        for v in value.values():
            _check_depth(name, v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(name, v, depth + 1)


def check_output(name: str, kind: str, value: Any) -> Any:
    kind = kind.lower()
    if value is None:
        return None
    if kind == "string":
        return _check_string(name, value)
    if kind == "number":
        return _check_number(name, value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise CodeOutputError(f"Output {name} must be a boolean, got {type(value).__name__} instead.")
        return value
    if kind == "object":
        if not isinstance(value, Mapping):
            raise CodeOutputError(f"Output {name} must be an object, got {type(value).__name__} instead.")
        _check_depth(name, value)
        return dict(value)
    if kind.startswith("array"):
        if not isinstance(value, list):
            raise CodeOutputError(f"Output {name} must be an array, got {type(value).__name__} instead.")
        inner = kind[6:-1] if kind.startswith("array[") else "any"
        limit = MAX_ARRAY.get(inner)
        if limit is not None and len(value) > limit:
            raise CodeOutputError(f"The length of output variable `{name}` must be less than {limit} elements.")
        if inner in ("string", "number", "boolean", "object"):
            return [check_output(f"{name}[{i}]", inner, v) for i, v in enumerate(value)]
        _check_depth(name, value)
        return value
    return value


class CodeNode(Node):
    type = "code"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = {name: ctx.pool.get(sel) for name, sel in variables(self.data)}
        sandbox = ctx.require("sandbox")
        language = str(self.data.get("code_language") or "python3")
        if language not in ("python3", "javascript"):
            raise NodeError(f"Unsupported code language: {language}", "CodeNodeError")
        try:
            result = await sandbox.arun(language, str(self.data.get("code") or ""), inputs)
        except Exception as exc:
            raise NodeError(str(exc) or type(exc).__name__, "CodeExecutionError") from exc
        if not isinstance(result, Mapping):
            raise NodeError("The code's main function must return a dict.", "CodeNodeError")
        outputs: dict[str, Any] = {}
        declared = self.data.get("outputs") or {}
        for name, spec in declared.items():
            if name not in result:
                raise CodeOutputError(f"Output {name} is missing.")
            kind = str((spec or {}).get("type") or "any") if isinstance(spec, Mapping) else "any"
            outputs[name] = check_output(name, kind, result[name])
        return NodeResult(outputs=outputs, inputs=inputs)


def register(r: Any) -> None:
    r.nodes.register(CodeNode.type, CodeNode)
