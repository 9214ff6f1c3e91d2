"""Dify's limits on what a code node returns: nesting depth, string length, number range and precision.

Mirrors the schema-free walk of Dify's CodeNode._transform_result (api/core/workflow/nodes/code/code_node.py),
which the sandbox applies to every returned value. Array lengths depend on the declared output type, so the
code node checks those (SandboxSettings.max_*_array_length).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openify.security.errors import OutputLimitError
from openify.settings import SandboxSettings


def check_output(result: dict[str, Any], limits: SandboxSettings) -> None:
    """Raise OutputLimitError where `result` breaks a limit; nested dicts count one level each, as in Dify."""
    _check_dict(result, limits, "", 1)


def _check_dict(value: dict[str, Any], limits: SandboxSettings, prefix: str, depth: int) -> None:
    if depth > limits.max_depth:
        raise OutputLimitError(f"Depth limit {limits.max_depth} reached, object too deep.")
    for key, item in value.items():
        _check_value(item, limits, f"{prefix}.{key}" if prefix else str(key), depth)


def _check_value(value: Any, limits: SandboxSettings, name: str, depth: int) -> None:
    if isinstance(value, dict):
        _check_dict(value, limits, name, depth + 1)
    elif isinstance(value, list):
        # A list adds no level of its own, but a list inside a list does (Dify recurses into it).
        for i, item in enumerate(value):
            _check_value(item, limits, f"{name}[{i}]", depth + 1 if isinstance(item, list) else depth)
    elif isinstance(value, str):
        if len(value) > limits.max_string_length:
            raise OutputLimitError(
                f"The length of output variable `{name}` must be less than {limits.max_string_length} characters"
            )
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        _check_number(value, limits, name)


def _check_number(value: float, limits: SandboxSettings, name: str) -> None:
    if value > limits.max_number or value < limits.min_number:
        raise OutputLimitError(
            f"Output variable `{name}` is out of range, it must be between {limits.min_number} and {limits.max_number}."
        )
    if isinstance(value, float):
        exponent = Decimal(str(value)).normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > limits.max_precision:
            raise OutputLimitError(
                f"Output variable `{name}` has too high precision, it must be less than {limits.max_precision} digits."
            )
