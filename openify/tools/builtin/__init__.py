"""The `builtin` tool source: Dify's four core providers that need no plugin (time, webscraper, code, audio).

Other builtin names in a DSL (`tavily`, `json_process`, ...) are Dify plugins now; the services' tool manager
sends them to the `plugin` source, as Dify does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from openify.registry import Registries
from openify.tools.base import (
    ProviderType,
    ToolCall,
    ToolMessage,
    ToolNotFound,
    ToolProviderDeclaration,
    ToolRef,
    ToolSourceContext,
)
from openify.tools.builtin.audio import AudioTools
from openify.tools.builtin.code import CodeTools
from openify.tools.builtin.time import TimeTools
from openify.tools.builtin.webscraper import WebScraperTools


class BuiltinProvider(Protocol):
    declaration: ToolProviderDeclaration

    def invoke(self, tool_name: str, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        """Run one of this provider's tools."""
        ...


class BuiltinToolSource:
    provider_type: ClassVar[ProviderType] = "builtin"

    def __init__(self, context: ToolSourceContext) -> None:
        providers: list[BuiltinProvider] = [
            TimeTools(),
            WebScraperTools(context.settings),
            CodeTools(context.settings),
            AudioTools(context.host),
        ]
        self._providers = {p.declaration.id: p for p in providers}

    async def providers(self) -> Sequence[ToolProviderDeclaration]:
        return [p.declaration for p in self._providers.values()]

    async def find_provider(self, provider_id: str) -> ToolProviderDeclaration | None:
        # `langgenius/time/time` names the same provider in exports made after the plugin move.
        provider = self._providers.get(provider_id) or self._providers.get(provider_id.rsplit("/", 1)[-1])
        if provider is None or ("/" in provider_id and not provider_id.startswith("langgenius/")):
            return None
        return provider.declaration

    async def invoke(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        declaration = await self.find_provider(ref.provider)
        if declaration is None or declaration.find_tool(ref.tool) is None:
            raise ToolNotFound(f"Builtin tool {ref.provider}/{ref.tool} not found")
        async for message in self._providers[declaration.id].invoke(ref.tool, parameters, call):
            yield message


def register(r: Registries) -> None:
    r.tool_sources.register(BuiltinToolSource.provider_type, BuiltinToolSource)
