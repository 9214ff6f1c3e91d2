"""One registry per extension point, all held by one `Registries` object built by `create_app`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from openify.errors import InvalidParam

if TYPE_CHECKING:
    from openify.tools.base import AgentStrategiesFactory, ToolSourceFactory

T = TypeVar("T")


class DuplicateName(Exception):
    """Two plugins registered the same name in one registry."""


class UnknownName(InvalidParam):
    """A name was looked up that no plugin registered (a 400 for the caller)."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind, self._items = kind, dict[str, T]()

    def register(self, name: str, item: T) -> None:
        if name in self._items:
            raise DuplicateName(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind}: {name!r}")
        return self._items[name]

    def find(self, name: str) -> T | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Registries:
    """Every extension point of Openify. Nothing is global: `create_app` builds one and plugins fill it."""

    nodes: Registry[Any] = field(default_factory=lambda: Registry("node type"))
    llm_providers: Registry[Any] = field(default_factory=lambda: Registry("LLM provider"))
    embedding_providers: Registry[Any] = field(default_factory=lambda: Registry("embedding provider"))
    rerank_providers: Registry[Any] = field(default_factory=lambda: Registry("rerank provider"))
    speech_to_text_providers: Registry[Any] = field(default_factory=lambda: Registry("speech-to-text provider"))
    text_to_speech_providers: Registry[Any] = field(default_factory=lambda: Registry("text-to-speech provider"))
    vector_stores: Registry[Any] = field(default_factory=lambda: Registry("vector store"))
    keyword_indexes: Registry[Any] = field(default_factory=lambda: Registry("keyword index"))
    extractors: Registry[Any] = field(default_factory=lambda: Registry("extractor"))
    splitters: Registry[Any] = field(default_factory=lambda: Registry("splitter"))
    job_runners: Registry[Any] = field(default_factory=lambda: Registry("job runner"))
    tools: Registry[Any] = field(default_factory=lambda: Registry("tool"))
    # Tool sources by Dify provider_type (builtin, plugin, mcp, api, workflow): openify/tools/base.py
    tool_sources: Registry[ToolSourceFactory] = field(default_factory=lambda: Registry("tool provider type"))
    # Agent strategies (Dify agent-strategy plugins) by source name (`plugin`): openify/tools/base.py
    agent_strategy_sources: Registry[AgentStrategiesFactory] = field(
        default_factory=lambda: Registry("agent strategy source")
    )
