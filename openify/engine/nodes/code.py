"""`code`: Python 3 or JavaScript through the sandbox port; outputs checked against the declared types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult
from openify.engine.nodes.template_transform import variables
from openify.engine.ports import CodeSandbox
from openify.settings import SandboxSettings

# Dify's CODE_* limits (workflow-dsl.md §9) come from SandboxSettings (OPENIFY_SANDBOX__MAX_*), read through
# the sandbox port: no constant here may shadow them.


class CodeOutputError(NodeError):
    error_type = "OutputValidationError"


def _check_string(name: str, value: Any, limits: SandboxSettings) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CodeOutputError(f"Output {name} must be a string, got {type(value).__name__} instead.")
    if len(value) > limits.max_string_length:
        raise CodeOutputError(
            f"The length of output variable `{name}` must be less than {limits.max_string_length} characters"
        )
    return value.replace("\x00", "")


def _check_number(name: str, value: Any, limits: SandboxSettings) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)  # Dify turns booleans declared `number` into 0/1
    if not isinstance(value, int | float):
        raise CodeOutputError(f"Output {name} must be a number, got {type(value).__name__} instead.")
    if value > limits.max_number or value < limits.min_number:
        raise CodeOutputError(
            f"Output {name} is out of range, it must be between {limits.min_number} and {limits.max_number}."
        )
    if isinstance(value, float):
        return round(value, limits.max_precision)
    return int(value)


def _check_depth(name: str, value: Any, limits: SandboxSettings, depth: int = 1) -> None:
    if depth > limits.max_depth:
        raise CodeOutputError(f"Depth limit {limits.max_depth} reached, object too deep.")
    if isinstance(value, Mapping):
        for v in value.values():
            _check_depth(name, v, limits, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(name, v, limits, depth + 1)


def _array_limit(inner: str, limits: SandboxSettings) -> int | None:
    return {
        "string": limits.max_string_array_length,
        "object": limits.max_object_array_length,
        "number": limits.max_number_array_length,
        "boolean": limits.max_boolean_array_length,
    }.get(inner)


def check_output(name: str, kind: str, value: Any, limits: SandboxSettings) -> Any:
    """`value` as the declared output type `kind`, within the limits; CodeOutputError otherwise."""
    kind = kind.lower()
    if value is None:
        return None
    if kind == "string":
        return _check_string(name, value, limits)
    if kind == "number":
        return _check_number(name, value, limits)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise CodeOutputError(f"Output {name} must be a boolean, got {type(value).__name__} instead.")
        return value
    if kind == "object":
        if not isinstance(value, Mapping):
            raise CodeOutputError(f"Output {name} must be an object, got {type(value).__name__} instead.")
        _check_depth(name, value, limits)
        return dict(value)
    if kind.startswith("array"):
        if not isinstance(value, list):
            raise CodeOutputError(f"Output {name} must be an array, got {type(value).__name__} instead.")
        inner = kind[6:-1] if kind.startswith("array[") else "any"
        limit = _array_limit(inner, limits)
        if limit is not None and len(value) > limit:
            raise CodeOutputError(f"The length of output variable `{name}` must be less than {limit} elements.")
        if inner in ("string", "number", "boolean", "object"):
            return [check_output(f"{name}[{i}]", inner, v, limits) for i, v in enumerate(value)]
        _check_depth(name, value, limits)
        return value
    return value


class CodeNode(Node):
    type = "code"

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = {name: ctx.pool.get(sel) for name, sel in variables(self.data)}
        sandbox: CodeSandbox = ctx.require("sandbox")
        language = str(self.data.get("code_language") or "python3")
        if language not in ("python3", "javascript"):
            raise NodeError(f"Unsupported code language: {language}", "CodeNodeError")
        try:
            result = await sandbox.arun(
                "python3" if language == "python3" else "javascript", str(self.data.get("code") or ""), inputs
            )
        except Exception as exc:
            raise NodeError(str(exc) or type(exc).__name__, "CodeExecutionError") from exc
        if not isinstance(result, Mapping):
            raise NodeError("The code's main function must return a dict.", "CodeNodeError")
        limits = sandbox.limits
        outputs: dict[str, Any] = {}
        declared = self.data.get("outputs") or {}
        for name, spec in declared.items():
            if name not in result:
                raise CodeOutputError(f"Output {name} is missing.")
            kind = str((spec or {}).get("type") or "any") if isinstance(spec, Mapping) else "any"
            outputs[name] = check_output(name, kind, result[name], limits)
        return NodeResult(outputs=outputs, inputs=inputs)


def register(r: Any) -> None:
    r.nodes.register(CodeNode.type, CodeNode)
