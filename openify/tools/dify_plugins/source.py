"""The `plugin` tool source and the agent strategies of installed Dify plugins, run by `PluginRuntime`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from openify.tools.base import (
    AgentStrategyDeclaration,
    ParameterForm,
    ProviderType,
    ToolCall,
    ToolDeclaration,
    ToolError,
    ToolMessage,
    ToolNotFound,
    ToolParameter,
    ToolProviderDeclaration,
    ToolRef,
    ToolSource,
)
from openify.tools.dify_plugins.installer import InstalledPlugin
from openify.tools.dify_plugins.protocol import tool_message
from openify.tools.dify_plugins.runtime import PluginInvokeError, PluginRuntime, PluginUnavailable
from openify.tools.dify_plugins.store import DifyPluginStore


class _Sources(Protocol):
    def source(self, provider_type: str) -> ToolSource | None: ...


def plugin_source_of(tools: _Sources) -> DifyPluginSource:
    """The `plugin` source a tool manager built (the services' install and credential calls share it)."""
    source = tools.source("plugin")
    if not isinstance(source, DifyPluginSource):
        raise TypeError("the `plugin` tool source is not Openify's Dify plugin host")
    return source


def full_provider_id(provider_id: str) -> str:
    """Dify's `GenericProviderID`: a bare `json_process` is `langgenius/json_process/json_process`,
    `author/name` is `author/name/name`."""
    parts = provider_id.strip().split("/")
    if len(parts) == 1:
        return f"langgenius/{parts[0]}/{parts[0]}"
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}/{parts[1]}"
    return provider_id.strip()


def _split(provider_id: str) -> tuple[str, str]:
    """`author/name/provider` -> (`author/name`, `provider`)."""
    full = full_provider_id(provider_id)
    plugin_key, _, provider = full.rpartition("/")
    return plugin_key, provider


def _parameter(raw: Mapping[str, Any]) -> ToolParameter:
    form: ParameterForm = "llm"
    if raw.get("form") in ("form", "schema"):
        form = raw["form"]
    return ToolParameter(
        name=str(raw.get("name", "")),
        type=str(raw.get("type", "string")),
        form=form,
        required=bool(raw.get("required", False)),
        label=raw.get("label") or {},
        human_description=raw.get("human_description") or {},
        llm_description=str(raw.get("llm_description") or ""),
        default=raw.get("default"),
        options=raw.get("options") or (),
        min=raw.get("min"),
        max=raw.get("max"),
        input_schema=raw.get("input_schema"),
    )


def provider_declarations(plugin: InstalledPlugin) -> list[ToolProviderDeclaration]:
    out = []
    for p in plugin.declarations.get("tool_providers", []):
        tools = [
            ToolDeclaration(
                name=t["name"],
                label=t.get("label") or {},
                description=t.get("description", ""),
                human_description=t.get("human_description") or {},
                parameters=[_parameter(x) for x in t.get("parameters") or []],
                output_schema=t.get("output_schema"),
            )
            for t in p.get("tools", [])
        ]
        out.append(
            ToolProviderDeclaration(
                provider_type="plugin",
                id=f"{plugin.key}/{p['name']}",
                name=p["name"],
                label=p.get("label") or {},
                description=p.get("description") or {},
                icon=p.get("icon", ""),
                credentials_schema=p.get("credentials_schema") or (),
                tools=tools,
            )
        )
    return out


class DifyPluginSource:
    """Tools (`provider_type: plugin`) and agent strategies of the installed Dify plugins."""

    provider_type: ClassVar[ProviderType] = "plugin"

    def __init__(self, store: DifyPluginStore, runtime: PluginRuntime) -> None:
        self.store, self.runtime = store, runtime

    # --- ToolSource ------------------------------------------------------------------------------
    async def providers(self) -> Sequence[ToolProviderDeclaration]:
        return [d for p in self.store.installed() for d in provider_declarations(p)]

    async def find_provider(self, provider_id: str) -> ToolProviderDeclaration | None:
        plugin_key, _ = _split(provider_id)
        plugin = self.store.find(plugin_key)
        if plugin is None:
            return None
        full = full_provider_id(provider_id)
        return next((d for d in provider_declarations(plugin) if d.id == full), None)

    async def invoke(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        plugin_key, provider = _split(ref.provider)
        plugin = self.store.find(plugin_key)
        declared = await self.find_provider(ref.provider)
        if plugin is None or declared is None:
            raise ToolNotFound(f"Dify plugin {plugin_key} is not installed (tool provider {ref.provider})")
        if declared.find_tool(ref.tool) is None:
            raise ToolNotFound(f"Dify plugin {plugin_key} has no tool {ref.tool!r} in provider {provider!r}")
        data = {
            "type": "tool",
            "action": "invoke_tool",
            "user_id": call.user_id,
            "provider": provider,
            "tool": ref.tool,
            "credentials": self.store.credentials(declared.id),
            "credential_type": "api-key",
            "tool_parameters": dict(parameters),
        }
        async for message in self._run(plugin, data, call):
            yield message

    # --- AgentStrategies -------------------------------------------------------------------------
    async def find_strategy(self, provider: str, strategy: str) -> AgentStrategyDeclaration | None:
        plugin_key, name = _split(provider)
        plugin = self.store.find(plugin_key)
        if plugin is None:
            return None
        for p in plugin.declarations.get("agent_strategy_providers", []):
            if p["name"] != name:
                continue
            for s in p.get("strategies", []):
                if s["name"] == strategy:
                    return AgentStrategyDeclaration(
                        provider=full_provider_id(provider),
                        name=strategy,
                        label=s.get("label") or {},
                        description=s.get("description", ""),
                        parameters=[_parameter(x) for x in s.get("parameters") or []],
                    )
        return None

    async def invoke_strategy(
        self, provider: str, strategy: str, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        if await self.find_strategy(provider, strategy) is None:
            raise ToolNotFound(f"agent strategy {strategy!r} of {full_provider_id(provider)} is not installed")
        plugin_key, name = _split(provider)
        plugin = self.store.find(plugin_key)
        assert plugin is not None  # noqa: S101 - find_strategy found it
        data = {
            "type": "agent_strategy",
            "action": "invoke_agent_strategy",
            "user_id": call.user_id,
            "agent_strategy_provider": name,
            "agent_strategy": strategy,
            "agent_strategy_params": dict(parameters),
        }
        async for message in self._run(plugin, data, call):
            yield message

    async def _run(
        self, plugin: InstalledPlugin, data: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        try:
            async for item in self.runtime.invoke(
                plugin,
                data,
                user_id=call.user_id,
                app_id=call.app_id,
                conversation_id=call.conversation_id,
                message_id=call.message_id,
            ):
                message = tool_message(item)
                if message is not None:
                    yield message
        except PluginInvokeError as e:
            raise ToolError(f"{plugin.key}: {e.detail}") from e
        except PluginUnavailable as e:
            raise ToolError(e.detail) from e
