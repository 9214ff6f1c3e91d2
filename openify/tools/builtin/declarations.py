"""Short builders for the builtin providers' declarations (Dify's tool YAML, written as data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openify.tools.base import ParameterForm, ToolDeclaration, ToolParameter


def label(en: str, zh: str | None = None) -> dict[str, str]:
    return {"en_US": en, "zh_Hans": zh or en}


def param(
    name: str,
    type: str,
    *,
    form: ParameterForm = "llm",
    required: bool = False,
    en: str = "",
    zh: str | None = None,
    llm: str = "",
    default: Any = None,
    options: Sequence[str] = (),
) -> ToolParameter:
    return ToolParameter(
        name=name,
        type=type,
        form=form,
        required=required,
        label=label(en or name, zh),
        human_description=label(llm or en or name),
        llm_description=llm,
        default=default,
        options=[{"value": o, "label": label(o)} for o in options],
    )


def tool(name: str, en: str, zh: str, description: str, parameters: Sequence[ToolParameter] = ()) -> ToolDeclaration:
    return ToolDeclaration(
        name=name,
        label=label(en, zh),
        description=description,
        human_description=label(description),
        parameters=tuple(parameters),
    )


def text_of(parameters: Mapping[str, Any], name: str, default: str = "") -> str:
    value = parameters.get(name)
    return default if value is None else str(value)
