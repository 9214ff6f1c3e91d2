"""`template-transform`: Jinja2 in the sandboxed environment over the node's variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector

MAX_LENGTH = 400_000  # Dify's TEMPLATE_TRANSFORM_MAX_LENGTH


def jinja_env() -> SandboxedEnvironment:
    # Dify renders through its code sandbox with plain Jinja2 defaults (no autoescape, keep trailing newline off).
    return SandboxedEnvironment(autoescape=False)


def variables(data: Mapping[str, Any], key: str = "variables") -> list[tuple[str, list[str]]]:
    return [
        (str(v["variable"]), selector(v.get("value_selector")))
        for v in data.get(key) or []
        if isinstance(v, Mapping) and v.get("variable")
    ]


class TemplateTransformNode(Node):
    type = "template-transform"
    __slots__ = ("_template", "_vars")

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._vars = variables(self.data)
        self._template: Any = None

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = {name: ctx.pool.get(sel) for name, sel in self._vars}
        try:
            if self._template is None:
                self._template = jinja_env().from_string(str(self.data.get("template") or ""))
            text = self._template.render(**inputs)
        except TemplateError as exc:
            raise NodeError(f"Template error: {exc}", "TemplateTransformError") from exc
        if len(text) > MAX_LENGTH:
            raise NodeError(f"Output length exceeds {MAX_LENGTH} characters", "TemplateTransformError")
        return NodeResult(outputs={"output": text}, inputs=inputs)


def register(r: Any) -> None:
    r.nodes.register(TemplateTransformNode.type, TemplateTransformNode)
