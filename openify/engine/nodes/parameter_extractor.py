"""`parameter-extractor`: the model fills declared parameters, by tool calling or by a JSON prompt."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openify.engine.model_calls import ModelSpec, clean_prompt, history, invoke, resolve, vision_parts, with_parts
from openify.engine.node import Node, NodeContext, NodeResult, selector, usage_dict, usage_metadata
from openify.engine.nodes.llm import parse_json_reply
from openify.providers.base import ChatMessage, LLMRequest, ToolSpec

TOOL = "extract_parameters"
_DEFAULTS: dict[str, Any] = {"number": 0, "boolean": False, "string": ""}


def _kind(p: Mapping[str, Any]) -> str:
    kind = str(p.get("type") or "string")
    return {"bool": "boolean", "select": "string"}.get(kind, kind)


def _schema(params: list[Mapping[str, Any]]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for p in params:
        kind = _kind(p)
        prop: dict[str, Any]
        if kind.startswith("array"):
            inner = kind[6:-1] if kind.startswith("array[") else "string"
            prop = {"type": "array", "items": {"type": inner}}
        else:
            prop = {"type": kind}
        prop["description"] = str(p.get("description") or "")
        if p.get("options"):
            prop["enum"] = list(p["options"])
        props[str(p["name"])] = prop
    required = [str(p["name"]) for p in params if p.get("required")]
    return {"type": "object", "properties": props, "required": required}


def _fits(kind: str, value: Any) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind.startswith("array"):
        if not isinstance(value, list):
            return False
        inner = kind[6:-1] if kind.startswith("array[") else ""
        if not inner:
            return True
        if inner == "object":
            return all(isinstance(v, Mapping) for v in value)
        return all(_fits(inner, v) for v in value)
    if kind == "object":
        return isinstance(value, Mapping)
    return True


class ParameterExtractorNode(Node):
    type = "parameter-extractor"

    async def run(self, ctx: NodeContext) -> NodeResult:
        d = self.data
        params = [p for p in d.get("parameters") or [] if isinstance(p, Mapping) and p.get("name")]
        query = ctx.pool.get(selector(d.get("query")))
        query = "" if query is None else str(query)
        spec = ModelSpec.of(d)
        llm = resolve(ctx, spec)
        instruction = clean_prompt(ctx.pool.render(str(d.get("instruction") or "")))
        schema = _schema(params)
        use_tools = d.get("reasoning_mode", "function_call") == "function_call" and getattr(
            llm, "supports_tools", False
        )
        system = (
            "You are a helpful assistant tasked with extracting structured information based on specific criteria "
            f"provided. Follow the guidelines below to ensure consistency and accuracy.\n{instruction}"
        )
        if not use_tools:
            system += "\nAnswer with only a JSON object that matches this JSON schema, nothing else:\n" + json.dumps(
                schema, ensure_ascii=False
            )
        messages = [ChatMessage("system", system), *await history(ctx, d.get("memory"), spec)]
        messages.append(with_parts(ChatMessage("user", query), await vision_parts(ctx, d.get("vision"))))
        tools = [ToolSpec(TOOL, "Extract parameters from the natural language text", schema)] if use_tools else []
        result = await invoke(
            llm, LLMRequest(model=spec.name, messages=messages, params=spec.params, tools=tools, stop=list(spec.stop))
        )
        raw: Any = None
        if result.tool_calls:
            try:
                raw = json.loads(result.tool_calls[0].arguments)
            except ValueError:
                raw = None
        if raw is None:
            raw = parse_json_reply(result.text)
        outputs: dict[str, Any] = {}
        success, reason = 1, ""
        if not isinstance(raw, Mapping):
            success, reason, raw = 0, "Failed to extract result from function call or text response", {}
        for p in params:
            name, kind = str(p["name"]), _kind(p)
            value = raw.get(name)
            if value is None:
                if p.get("required") and success:
                    success, reason = 0, f"Parameter {name} is required"
                value = [] if kind.startswith("array") else _DEFAULTS.get(kind)
            elif kind == "number" and isinstance(value, str):
                try:
                    value = float(value) if "." in value else int(value)
                except ValueError:
                    success, reason, value = 0, f"Invalid number for {name}", 0
            elif not _fits(kind, value):
                success, reason = 0, f"Invalid type for parameter {name}"
            elif p.get("options") and value not in p["options"]:
                success, reason = 0, f"Invalid `select` value for parameter {name}"
            outputs[name] = value
        outputs.update(__is_success=success, __reason=reason or None, __usage=usage_dict(result.usage))
        return NodeResult(
            outputs=outputs,
            inputs={"query": query},
            metadata=usage_metadata(result.usage),
            process_data={
                "function": {"name": TOOL, "parameters": schema} if use_tools else None,
                "llm_text": result.text,
            },
        )


def register(r: Any) -> None:
    r.nodes.register(ParameterExtractorNode.type, ParameterExtractorNode)
