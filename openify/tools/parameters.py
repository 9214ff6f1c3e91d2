"""Tool parameter values cast to their declared types, as Dify's ToolParameter casts them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openify.tools.base import ToolDeclaration, ToolError, ToolParameter

_TRUE = frozenset({"true", "yes", "y", "1", "on"})


def cast_value(p: ToolParameter, value: Any) -> Any:
    """A value cast to the parameter's declared type, as Dify's ToolParameter cast does."""
    if value is None:
        return None
    match p.type:
        case "string" | "secret-input" | "select" | "text-input" | "paragraph" | "dynamic-select":
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        case "number":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int | float):
                return value
            text = str(value).strip()
            if not text:
                return None
            try:
                return float(text) if any(c in text for c in ".eE") else int(text)
            except ValueError:
                raise ToolError(f"The tool parameter {p.name} must be a number, got {text!r}") from None
        case "boolean" | "checkbox":
            if isinstance(value, str):
                return value.strip().lower() in _TRUE
            return bool(value)
        case "array" | "object":
            if isinstance(value, str):
                try:
                    return json.loads(value) if value.strip() else None
                except ValueError:
                    raise ToolError(f"The tool parameter {p.name} must be JSON {p.type}, got {value!r:.80}") from None
            return value
        case "files":
            return value if isinstance(value, list) else [value]
        case "file":
            return value[0] if isinstance(value, list) and value else value
    return value


def cast_parameters(tool: ToolDeclaration, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Declared parameters cast and their defaults filled in; undeclared ones pass through (Dify passes them)."""
    out = dict(parameters)
    for p in tool.parameters:
        value = cast_value(p, out.get(p.name))
        if value is None and p.default is not None:
            value = cast_value(p, p.default)
        if value is None:
            out.pop(p.name, None)
            if p.required and p.form == "form":
                raise ToolError(f"tool parameter {p.name} not found in tool config")
            continue
        out[p.name] = value
    return out
