"""`agent`: an agent strategy (a Dify agent-strategy plugin such as `langgenius/agent`) through the tools port,
with its parameters built as Dify's AgentNode builds them: full tool entities, the model with its history.

Its log messages stream as `agent_log` events; its text streams to Answer/End nodes; outputs are `text`,
`usage`, `files`, `json` and the variables the strategy sets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openify.engine.events import AgentLog
from openify.engine.node import Node, NodeContext, NodeError, NodeResult, StreamChunk, selector
from openify.engine.nodes.tool import call_of, file_of
from openify.engine.ports import ToolInvoker
from openify.tools.base import (
    AgentStrategyDeclaration,
    FileMessage,
    JsonMessage,
    LinkMessage,
    LogMessage,
    ResolvedTool,
    TextMessage,
    ToolError,
    ToolMessage,
    ToolNotFound,
    ToolParameter,
    ToolRef,
    VariableMessage,
)
from openify.tools.parameters import cast_value

_TOOLS_TYPES = ("array[tools]", "tools-selector", "array-tools")
_USAGE_ZERO = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "total_price": "0", "currency": "USD"}


def _unwrap(value: Any) -> Any:
    """A setting written as a ToolInput (`{type, value}`) or as `{value}` by newer exports; plain values stay."""
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


def parameter_dict(p: ToolParameter, form: str | None = None) -> dict[str, Any]:
    """A declared parameter as Dify's ToolParameter dumps it (what a strategy plugin reads)."""
    return {
        "name": p.name,
        "label": dict(p.label),
        "human_description": dict(p.human_description),
        "placeholder": None,
        "type": p.type,
        "form": form or p.form,
        "llm_description": p.llm_description,
        "required": p.required,
        "default": p.default,
        "min": p.min,
        "max": p.max,
        "precision": None,
        "options": [dict(o) for o in p.options],
        "scope": None,
        "auto_generate": None,
        "template": None,
        "input_schema": dict(p.input_schema) if p.input_schema else None,
    }


def tool_entity(tool: ResolvedTool, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Dify's full tool entity for a strategy: identity, parameters (manual ones turned into form ones),
    descriptions, and the runtime parameters the app builder fixed."""
    settings: Mapping[str, Any] = entry["settings"] if isinstance(entry.get("settings"), Mapping) else {}
    params: Mapping[str, Any] = entry["parameters"] if isinstance(entry.get("parameters"), Mapping) else {}
    manual = {name for name, v in params.items() if isinstance(v, Mapping) and str(v.get("auto", 1)) in ("0", "False")}
    runtime: dict[str, Any] = {k: _unwrap(v) for k, v in settings.items() if _unwrap(v) is not None}
    runtime.update({k: _unwrap(params[k]) for k in manual if _unwrap(params[k]) is not None})
    declared = tool.tool
    return {
        "identity": {
            "author": tool.provider.id.split("/")[0] if "/" in tool.provider.id else "Dify",
            "name": declared.name,
            "label": dict(declared.label),
            "provider": tool.provider.id,
            "icon": tool.provider.icon or None,
        },
        "parameters": [parameter_dict(p, "form" if p.name in manual else None) for p in declared.parameters],
        "description": {"human": dict(declared.human_description), "llm": declared.description},
        "output_schema": dict(declared.output_schema or {}),
        "has_runtime_parameters": False,
        "runtime_parameters": runtime,
        "credential_id": entry.get("credential_id"),
        # The SDK knows no `plugin` provider type: Dify calls plugin tools `builtin`, and so does a strategy's
        # call back, which the tool manager then finds among the plugins.
        "provider_type": "builtin" if tool.ref.provider_type == "plugin" else tool.ref.provider_type,
    }


class AgentNode(Node):
    type = "agent"

    def strategy_ids(self) -> tuple[str, str]:
        return str(self.data.get("agent_strategy_provider_name") or ""), str(self.data.get("agent_strategy_name") or "")

    async def strategy(self, tools: ToolInvoker) -> AgentStrategyDeclaration:
        provider, name = self.strategy_ids()
        found = await tools.find_strategy(provider, name)
        if found is None:
            plugin = str(self.data.get("plugin_unique_identifier") or "") or "/".join(provider.split("/")[:2])
            raise NodeError(
                f"Agent strategy {name} of {provider} is not installed: its Dify plugin is missing "
                f"(openify plugin install {plugin})",
                "AgentStrategyNotFoundError",
            )
        return found

    def _input(self, ctx: NodeContext, entry: Any) -> tuple[bool, Any]:
        """Dify's agent inputs: `variable` from the pool; `mixed` and `constant` rendered as templates, and
        non-string constants (the model, the tools) rendered through their JSON text, then read back."""
        if not isinstance(entry, Mapping) or entry.get("value") is None:
            return False, None
        kind, value = entry.get("type"), entry["value"]
        if kind == "variable":
            sel = selector(value)
            return ctx.pool.has(sel), ctx.pool.get(sel)
        if kind not in ("mixed", "constant"):
            raise NodeError(f"Unknown agent input type '{kind}'", "AgentInputTypeError")
        if isinstance(value, str):
            return True, ctx.pool.render(value)
        rendered = ctx.pool.render(json.dumps(value, ensure_ascii=False))
        try:
            return True, json.loads(rendered)
        except ValueError:
            return True, rendered

    async def _tools(self, tools: ToolInvoker, value: Any) -> list[dict[str, Any]]:
        out = []
        for entry in value if isinstance(value, list) else []:
            if not isinstance(entry, Mapping) or not entry.get("enabled", True):
                continue
            ref = ToolRef(
                str(entry.get("type") or "builtin"),  # type: ignore[arg-type]  # the port refuses unknown types
                str(entry.get("provider_name") or entry.get("provider_id") or ""),
                str(entry.get("tool_name") or ""),
            )
            try:
                resolved = await tools.resolve(ref)
            except ToolNotFound as exc:
                raise NodeError(str(exc), "ToolProviderNotFoundError") from exc
            out.append(tool_entity(resolved, entry))
        return out

    async def _model(self, ctx: NodeContext, value: Any) -> dict[str, Any]:
        model = dict(value) if isinstance(value, Mapping) else {}
        history: list[dict[str, Any]] = []
        memory = self.data.get("memory")
        conversation = ctx.pool.get(["sys", "conversation_id"])
        if isinstance(memory, Mapping) and conversation and ctx.ports.history is not None:
            window = memory.get("window") or {}
            size = int(window.get("size") or 50) if window.get("enabled") else 50
            for m in await ctx.ports.history.messages(str(conversation), size):
                content = (
                    m.content if isinstance(m.content, str) else "".join(p for p in m.content if isinstance(p, str))
                )
                history.append({"role": m.role, "content": content, "name": None})
        model["history_prompt_messages"] = history
        # Openify's models are configured by name, not declared by plugins: a generic LLM schema stands in for
        # Dify's model entity (strategies read its features to decide on tool calling).
        model.setdefault(
            "entity",
            {
                "model": model.get("model"),
                "label": {"en_US": str(model.get("model") or "")},
                "model_type": "llm",
                "features": ["tool-call", "multi-tool-call", "stream-tool-call"],
                "fetch_from": "customizable-model",
                "model_properties": {"mode": model.get("mode") or "chat", "context_size": 32768},
                "deprecated": False,
                "parameter_rules": [],
            },
        )
        return model

    async def parameters(
        self, ctx: NodeContext, tools: ToolInvoker, strategy: AgentStrategyDeclaration
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(parameters for the strategy, parameters as logged in `inputs`)."""
        given = self.data.get("agent_parameters")
        if not isinstance(given, Mapping):
            given = {}
        params: dict[str, Any] = {}
        logged: dict[str, Any] = {}
        for p in strategy.parameters:
            present, value = self._input(ctx, given.get(p.name))
            if not present:
                continue
            logged[p.name] = value
            if p.type in _TOOLS_TYPES:
                value = await self._tools(tools, value)
            elif p.type == "model-selector":
                value = await self._model(ctx, value)
            else:
                try:
                    value = cast_value(p, value)
                except ToolError as exc:
                    raise NodeError(str(exc), "AgentVariableTypeError") from exc
            params[p.name] = value
        return params, logged

    async def stream(self, ctx: NodeContext) -> AsyncIterator[Any]:
        tools: ToolInvoker = ctx.require("tools")
        strategy = await self.strategy(tools)
        params, logged = await self.parameters(ctx, tools, strategy)
        provider, name = self.strategy_ids()
        text: list[str] = []
        files: list[Mapping[str, Any]] = []
        json_out: list[Any] = []
        variables: dict[str, Any] = {}
        logs: dict[str, dict[str, Any]] = {}
        usage: dict[str, Any] = dict(_USAGE_ZERO)
        try:
            message: ToolMessage
            async for message in tools.invoke_strategy(provider, name, params, call_of(ctx)):
                match message:
                    case LogMessage():
                        log = AgentLog(
                            id=message.id,
                            label=message.label,
                            parent_id=message.parent_id,
                            error=message.error,
                            status=message.status,
                            data=dict(message.data),
                            metadata=dict(message.metadata),
                            node_id=self.id,
                        )
                        logs[message.id] = {k: getattr(log, k) for k in log.__struct_fields__}
                        yield log
                    case TextMessage(text=piece):
                        text.append(piece)
                        yield StreamChunk((self.id, "text"), piece)
                    case LinkMessage(url=url):
                        piece = f"Link: {url}\n"
                        text.append(piece)
                        yield StreamChunk((self.id, "text"), piece)
                    case JsonMessage(data=data):
                        if isinstance(data, Mapping) and "execution_metadata" in data:
                            data = dict(data)
                            meta = data.pop("execution_metadata") or {}
                            usage.update({k: v for k, v in meta.items() if k in usage or k.startswith("prompt")})
                        if data:
                            json_out.append(data)
                    case FileMessage():
                        files.append(await file_of(ctx, message))
                    case VariableMessage(name=var, value=value, stream=True):
                        variables[var] = str(variables.get(var, "")) + str(value)
                        yield StreamChunk((self.id, var), str(value))
                    case VariableMessage(name=var, value=value):
                        variables[var] = value
                    case _:
                        pass
        except ToolNotFound as exc:
            raise NodeError(str(exc), "AgentStrategyNotFoundError") from exc
        except ToolError as exc:
            raise NodeError(
                f"An error occurred in the plugin, please contact the author of {provider} for help, "
                f"error details: {exc}",
                "AgentInvocationError",
            ) from exc
        outputs = {
            "text": "".join(text),
            "usage": usage,
            "files": files,
            "json": json_out or [{"data": []}],
            **variables,
        }
        metadata: dict[str, Any] = {
            "agent_log": list(logs.values()),
            "tool_info": {"agent_strategy": name, "provider": provider},
        }
        if int(usage.get("total_tokens") or 0) > 0:
            metadata.update(
                total_tokens=int(usage["total_tokens"]),
                total_price=str(usage.get("total_price") or "0"),
                currency=str(usage.get("currency") or "USD"),
            )
        yield NodeResult(outputs=outputs, inputs=logged, metadata=metadata, files=files)


def register(r: Any) -> None:
    r.nodes.register(AgentNode.type, AgentNode)
