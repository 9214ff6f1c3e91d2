"""Tool test kit: a tool manager over real registries, with a test-only `plugin` source and agent strategies
entering through the registries (as fakes must), for use before the Dify plugin host is merged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from openify.plugins import build_registries
from openify.providers.base import ModelResolver
from openify.registry import Registries, Registry
from openify.services.tools import ToolManager
from openify.settings import Settings
from openify.tools.base import (
    AgentStrategyDeclaration,
    FileMessage,
    JsonMessage,
    LogMessage,
    ProviderType,
    TextMessage,
    ToolCall,
    ToolError,
    ToolMessage,
    ToolNotFound,
    ToolProviderDeclaration,
    ToolRef,
    ToolSourceContext,
    VariableMessage,
)
from openify.tools.builtin import BuiltinToolSource
from openify.tools.builtin.declarations import label, param, tool

ECHO = ToolProviderDeclaration(
    provider_type="plugin",
    id="langgenius/echo/echo",
    name="echo",
    label=label("Echo"),
    tools=(
        tool(
            "shout",
            "Shout",
            "喊",
            "Repeats the words in upper case, piece by piece.",
            [
                param("words", "string", required=True),
                param("times", "number", form="form", default=1),
                param("loud", "boolean", form="form", default=False),
            ],
        ),
        tool("fail", "Fail", "失败", "Always fails.", [param("why", "string")]),
        tool("card", "Card", "卡片", "A json object, a file and variables.", [param("name", "string")]),
    ),
)


class EchoSource:
    """A `plugin` ToolSource for tests: records the calls it gets."""

    provider_type: ClassVar[ProviderType] = "plugin"
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, context: ToolSourceContext) -> None:
        self.context = context

    async def providers(self) -> Sequence[ToolProviderDeclaration]:
        return [ECHO]

    async def find_provider(self, provider_id: str) -> ToolProviderDeclaration | None:
        return ECHO if provider_id == ECHO.id else None

    async def invoke(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        EchoSource.calls.append((ref.tool, dict(parameters)))
        if ref.tool == "fail":
            raise ToolError(f"echo refuses: {parameters.get('why')}")
        if ref.tool == "card":
            yield JsonMessage({"name": parameters.get("name"), "名字": "卡片"})
            yield FileMessage(mime_type="text/plain", filename="card.txt", data=b"card")
            yield VariableMessage("greeting", "hi ")
            yield VariableMessage("stream_var", "a", stream=True)
            yield VariableMessage("stream_var", "b", stream=True)
            return
        words = str(parameters["words"]).upper()
        if parameters.get("loud") is True:
            words += "!"
        for _ in range(int(parameters.get("times") or 1)):
            for piece in words.split(" "):
                yield TextMessage(piece + " ")
                await asyncio.sleep(0)


class EchoStrategies:
    """AgentStrategies for tests: `langgenius/agent/agent` `echo` calls the first tool it is given once."""

    def __init__(self, context: ToolSourceContext) -> None:
        self.context = context
        self.received: list[dict[str, Any]] = []

    async def find_strategy(self, provider: str, strategy: str) -> AgentStrategyDeclaration | None:
        if provider == "langgenius/agent/agent" and strategy == "echo":
            return AgentStrategyDeclaration(
                provider,
                strategy,
                label("Echo"),
                parameters=(
                    param("model", "model-selector", form="form"),
                    param("tools", "array[tools]", form="form"),
                    param("query", "string", form="form"),
                    param("instruction", "string", form="form"),
                    param("maximum_iterations", "number", form="form", default=3),
                ),
            )
        return None

    async def invoke_strategy(
        self, provider: str, strategy: str, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        STRATEGY_CALLS.append(dict(parameters))
        yield LogMessage(id="round1", label="ROUND 1", status="start", data={})
        yield LogMessage(id="round1", label="ROUND 1", status="success", data={"output": "ok"})
        yield TextMessage(f"answer to {parameters.get('query')}")
        yield JsonMessage({"execution_metadata": {"total_tokens": 3}})


STRATEGY_CALLS: list[dict[str, Any]] = []


class DirectoryHost:
    """A ToolHost over a directory (files by `related_id`) and no models: for tests of the engine and sources."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    @property
    def models(self) -> ModelResolver:
        raise ToolNotFound("no models in this test")

    async def read_file(self, file: Mapping[str, Any], call: ToolCall) -> bytes:
        assert self.root is not None
        return (self.root / str(file["related_id"])).read_bytes()


def tool_registries(*, plugin: bool = True, strategies: bool = True) -> Registries:
    r = build_registries()
    r.tool_sources = Registry("tool provider type")
    r.tool_sources.register("builtin", BuiltinToolSource)
    if plugin:
        r.tool_sources.register("plugin", EchoSource)
    r.agent_strategy_sources = Registry("agent strategy source")
    if strategies:
        r.agent_strategy_sources.register("plugin", EchoStrategies)
    return r


def tool_manager(registries: Registries | None = None, root: Path | None = None) -> ToolManager:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return ToolManager(registries or tool_registries(), ToolSourceContext(settings, DirectoryHost(root)))
