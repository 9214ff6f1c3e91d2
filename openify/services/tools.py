"""The tool manager: one source per registered Dify `provider_type`, references resolved as Dify resolves them,
parameters cast to their declared types, and the agent strategies of every registered strategy source.

The engine reaches it through its `ToolInvoker` port; agent-chat apps call it directly."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from openify.providers.base import ModelResolver
from openify.registry import Registries
from openify.services.apps import definition_of
from openify.services.dsl import AppDefinition, requirements
from openify.storage.tables import App
from openify.tools.base import (
    AgentStrategies,
    AgentStrategyDeclaration,
    ResolvedTool,
    ToolCall,
    ToolError,
    ToolMessage,
    ToolNotFound,
    ToolRef,
    ToolSource,
    ToolSourceContext,
)
from openify.tools.parameters import cast_parameters

_BARE_ID = re.compile(r"^[a-z0-9_-]+$")
# Dify's ToolProviderID: these langgenius providers live in plugins named `<provider>_tool`.
_TOOL_SUFFIXED = frozenset({"jina", "siliconflow", "stepfun", "gitee_ai"})
PROVIDER_TYPES = frozenset({"builtin", "plugin", "mcp", "api", "workflow"})


def plugin_provider_id(provider: str) -> str:
    """Dify's mapping of a provider name to a plugin provider id: `json_process` ->
    `langgenius/json_process/json_process`, `jina` -> `langgenius/jina_tool/jina`; full ids stay. (Dify refuses
    `author/name`; Openify reads it as `author/name/name`.)"""
    value = provider.strip()
    if _BARE_ID.match(value):
        value = f"langgenius/{value}/{value}"
    elif value.count("/") == 1:  # `author/name`: the plugin's provider of the same name (as the plugin host reads it)
        value = f"{value}/{value.split('/')[1]}"
    parts = value.split("/")
    if len(parts) == 3 and parts[0] == "langgenius" and parts[2] in _TOOL_SUFFIXED and parts[1] == parts[2]:
        value = f"langgenius/{parts[2]}_tool/{parts[2]}"
    return value


def plugin_id_of(provider_id: str) -> str:
    """`author/plugin` of a provider id `author/plugin/provider` (what `openify plugin install` takes)."""
    return "/".join(plugin_provider_id(provider_id).split("/")[:2])


class ServerToolHost:
    """What tool sources get from the server: its models and the files tools are given."""

    def __init__(self, models: ModelResolver, read: Callable[[Mapping[str, Any], str, str], Awaitable[bytes]]) -> None:
        self._models, self._read = models, read

    @property
    def models(self) -> ModelResolver:
        return self._models

    async def read_file(self, file: Mapping[str, Any], call: ToolCall) -> bytes:
        return await self._read(file, call.app_id or "", call.user_id)


@dataclass(frozen=True, slots=True)
class MissingTool:
    """A tool or strategy an app names that no source has, with the Dify plugin that provides it."""

    kind: str  # tool | agent_strategy
    provider: str
    name: str
    plugin: str  # `author/name`, or "" when no plugin provides it (an MCP server, an API tool)
    identifier: str = ""  # `author/name:version@hash` when the DSL's dependencies pin it
    provider_type: str = ""

    @property
    def install(self) -> str:
        """The command that installs the plugin (or adds the MCP server)."""
        if self.provider_type == "mcp":
            return f"openify tools mcp add {self.provider} URL"
        return f"openify plugin install {self.identifier or self.plugin}" if self.plugin else ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "provider": self.provider,
            "name": self.name,
            "plugin": self.plugin,
            "identifier": self.identifier,
            "install": self.install,
        }


class PluginInstaller(Protocol):
    """The Dify plugin installer (`openify plugin install`), when this server has one."""

    async def install(self, source: str) -> Any:
        """Install a plugin from a marketplace id, a `.difypkg` file or a folder; raises when unreachable."""
        ...


class QueuedPluginInstaller:
    """`PluginInstaller` over the Dify plugin service: queues the install job and waits for it to end."""

    def __init__(self, plugins: Any, poll_s: float = 0.2, timeout_s: float = 900.0) -> None:
        self._plugins, self._poll_s, self._timeout_s = plugins, poll_s, timeout_s

    async def install(self, source: str) -> Any:
        view = await asyncio.to_thread(self._plugins.install, source)
        deadline = time.monotonic() + self._timeout_s
        while view["status"] == "installing":
            if time.monotonic() > deadline:
                raise ToolError(f"installing {source} did not finish within {self._timeout_s:g}s")
            await asyncio.sleep(self._poll_s)
            view = await asyncio.to_thread(self._plugins.get, view["plugin_id"])
        if view["status"] != "installed":
            raise ToolError(view.get("error") or f"installing {source} failed")
        return view


class ToolManager:
    """Every tool source and agent-strategy source of one server, built on first use from the registries."""

    def __init__(self, registries: Registries, context: ToolSourceContext) -> None:
        self._registries, self._context = registries, context
        self._sources: dict[str, ToolSource] = {}
        self._strategies: list[AgentStrategies] | None = None
        # Set by whoever builds the Dify plugin host; `--install-missing` uses it.
        self.installer: PluginInstaller | None = None

    def source(self, provider_type: str) -> ToolSource | None:
        if provider_type not in self._sources:
            factory = self._registries.tool_sources.find(provider_type)
            if factory is None:
                return None
            self._sources[provider_type] = factory(self._context)
        return self._sources[provider_type]

    def strategy_sources(self) -> list[AgentStrategies]:
        if self._strategies is None:
            reg = self._registries.agent_strategy_sources
            self._strategies = [reg.get(name)(self._context) for name in reg.names()]
        return self._strategies

    # --- tools ------------------------------------------------------------------------------------------
    async def resolve(self, ref: ToolRef) -> ResolvedTool:
        """As Dify: a builtin name is one of the core providers, or else a plugin (`json_process` ->
        `langgenius/json_process/json_process`); `plugin` ids are normalised the same way."""
        candidates: list[tuple[str, str]] = []
        if ref.provider_type == "builtin":
            candidates.append(("builtin", ref.provider))
        if ref.provider_type in ("builtin", "plugin"):
            candidates.append(("plugin", plugin_provider_id(ref.provider)))
        else:
            candidates.append((ref.provider_type, ref.provider))
        for provider_type, provider_id in candidates:
            source = self.source(provider_type)
            if source is None:
                continue
            provider = await source.find_provider(provider_id)
            if provider is None:
                continue
            tool = provider.find_tool(ref.tool)
            if tool is None:
                raise ToolNotFound(f"Tool {ref.tool} not found in provider {provider.id}")
            return ResolvedTool(ToolRef(source.provider_type, provider.id, ref.tool), provider, tool)
        raise ToolNotFound(missing_message(ref.provider_type, ref.provider, ref.tool))

    async def invoke(
        self, tool: ResolvedTool, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        source = self.source(tool.ref.provider_type)
        if source is None:
            raise ToolNotFound(missing_message(tool.ref.provider_type, tool.ref.provider, tool.ref.tool))
        async for message in source.invoke(tool.ref, cast_parameters(tool.tool, parameters), call):
            yield message

    async def call(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        """Resolve and invoke in one step."""
        resolved = await self.resolve(ref)
        async for message in self.invoke(resolved, parameters, call):
            yield message

    # --- agent strategies -------------------------------------------------------------------------------
    async def find_strategy(self, provider: str, strategy: str) -> AgentStrategyDeclaration | None:
        provider_id = plugin_provider_id(provider)
        for source in self.strategy_sources():
            found = await source.find_strategy(provider_id, strategy)
            if found is not None:
                return found
        return None

    async def invoke_strategy(
        self, provider: str, strategy: str, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        provider_id = plugin_provider_id(provider)
        for source in self.strategy_sources():
            if await source.find_strategy(provider_id, strategy) is not None:
                async for message in source.invoke_strategy(provider_id, strategy, parameters, call):
                    yield message
                return
        raise ToolNotFound(
            f"Agent strategy {strategy} of {provider_id} is not installed: "
            f"openify plugin install {plugin_id_of(provider_id)}"
        )

    # --- what an app needs ------------------------------------------------------------------------------
    async def missing(self, definition: AppDefinition) -> list[MissingTool]:
        """Which of an app's tools and agent strategies no source has now, with the plugin to install."""
        needs = requirements(definition)
        out: list[MissingTool] = []
        for t in needs.tools:
            if t.provider_type not in PROVIDER_TYPES:
                out.append(MissingTool("tool", t.provider, t.tool, ""))
                continue
            try:
                await self.resolve(ToolRef(t.provider_type, t.provider, t.tool))  # type: ignore[arg-type]  # checked
            except ToolNotFound:
                plugin = plugin_id_of(t.provider) if t.provider_type in ("builtin", "plugin") else ""
                found = needs.plugins.get(plugin, "")
                out.append(MissingTool("tool", t.provider, t.tool, plugin, found, t.provider_type))
        for provider, strategy in needs.strategies:
            if await self.find_strategy(provider, strategy) is None:
                plugin = plugin_id_of(provider)
                out.append(MissingTool("agent_strategy", provider, strategy, plugin, needs.plugins.get(plugin, "")))
        return out

    async def missing_for_app(self, app: App) -> list[MissingTool]:
        return await self.missing(definition_of(app))

    async def install_missing(self, missing: Sequence[MissingTool]) -> list[tuple[str, str | None]]:
        """Install each missing plugin once: (source, error or None) per plugin."""
        sources = list(dict.fromkeys(m.identifier or m.plugin for m in missing if m.plugin))
        results: list[tuple[str, str | None]] = []
        for source in sources:
            if self.installer is None:
                results.append((source, "this server has no Dify plugin installer"))
                continue
            try:
                await self.installer.install(source)
                results.append((source, None))
            except Exception as exc:  # unreachable marketplace, bad package: reported per plugin, never fatal
                results.append((source, str(exc) or type(exc).__name__))
        return results


def missing_message(provider_type: str, provider: str, tool: str) -> str:
    if provider_type in ("builtin", "plugin"):
        provider_id = plugin_provider_id(provider)
        return (
            f"Tool {tool} of provider {provider_id} is not available: its Dify plugin {plugin_id_of(provider_id)} "
            f"is not installed (openify plugin install {plugin_id_of(provider_id)})"
        )
    if provider_type == "mcp":
        return f"Tool {tool} of MCP server {provider} is not available: add it (openify tools mcp add {provider} URL)"
    return f"Tool {tool} of {provider_type} provider {provider} is not available on this server"
