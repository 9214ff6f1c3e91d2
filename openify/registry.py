"""One registry per extension point, all held by one `Registries` object built by `create_app`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from openify.errors import InvalidParam

if TYPE_CHECKING:
    from openify.engine.node import NodeFactory
    from openify.jobs.base import JobRunnerFactory
    from openify.knowledge.extractors.base import Extractor
    from openify.knowledge.keyword.base import KeywordIndexFactory
    from openify.knowledge.splitters import Splitter
    from openify.knowledge.vector_stores.base import VectorStoreFactory
    from openify.providers.base import (
        EmbeddingProviderFactory,
        LLMProviderFactory,
        ModerationProviderFactory,
        RerankProviderFactory,
        SpeechToTextProviderFactory,
        TextToSpeechProviderFactory,
    )
    from openify.tools.agent_tools import AgentToolFactory
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

    nodes: Registry[NodeFactory] = field(default_factory=lambda: Registry("node type"))
    llm_providers: Registry[LLMProviderFactory] = field(default_factory=lambda: Registry("LLM provider"))
    embedding_providers: Registry[EmbeddingProviderFactory] = field(
        default_factory=lambda: Registry("embedding provider")
    )
    rerank_providers: Registry[RerankProviderFactory] = field(default_factory=lambda: Registry("rerank provider"))
    speech_to_text_providers: Registry[SpeechToTextProviderFactory] = field(
        default_factory=lambda: Registry("speech-to-text provider")
    )
    text_to_speech_providers: Registry[TextToSpeechProviderFactory] = field(
        default_factory=lambda: Registry("text-to-speech provider")
    )
    moderation_providers: Registry[ModerationProviderFactory] = field(
        default_factory=lambda: Registry("moderation provider")
    )
    vector_stores: Registry[VectorStoreFactory] = field(default_factory=lambda: Registry("vector store"))
    keyword_indexes: Registry[KeywordIndexFactory] = field(default_factory=lambda: Registry("keyword index"))
    extractors: Registry[Extractor] = field(default_factory=lambda: Registry("extractor"))
    splitters: Registry[Splitter] = field(default_factory=lambda: Registry("splitter"))
    job_runners: Registry[JobRunnerFactory] = field(default_factory=lambda: Registry("job runner"))
    tools: Registry[AgentToolFactory] = field(default_factory=lambda: Registry("tool"))
    # Tool sources by Dify provider_type (builtin, plugin, mcp, api, workflow): openify/tools/base.py
    tool_sources: Registry[ToolSourceFactory] = field(default_factory=lambda: Registry("tool provider type"))
    # Agent strategies (Dify agent-strategy plugins) by source name (`plugin`): openify/tools/base.py
    agent_strategy_sources: Registry[AgentStrategiesFactory] = field(
        default_factory=lambda: Registry("agent strategy source")
    )
