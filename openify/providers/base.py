"""Contracts of the model layer. Services, the engine and knowledge code depend on these only.

LLMs are async (they stream inside the event loop); embedding and rerank models are sync, since they
run in indexing workers and thread pools, and the embedded model is CPU-bound numpy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from openify.providers.clients import ClientPool
    from openify.providers.config import ModelTarget

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    url: str  # http(s) URL or data: URL
    detail: Literal["low", "high", "auto"] = "auto"


ContentPart = str | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str | Sequence[ContentPart] = ""
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]  # JSON Schema of the arguments


@dataclass(frozen=True, slots=True)
class LLMRequest:
    model: str
    messages: Sequence[ChatMessage]
    mode: Literal["chat", "completion"] = "chat"
    params: Mapping[str, Any] = field(default_factory=dict)  # DSL completion_params: temperature, max_tokens, ...
    tools: Sequence[ToolSpec] = ()
    stop: Sequence[str] = ()
    response_format: Mapping[str, Any] | None = None  # structured output (JSON schema)


@dataclass(frozen=True, slots=True)
class Usage:
    """What one call cost, as Dify reports it in `metadata.usage`."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_unit_price: Decimal = Decimal("0")
    completion_unit_price: Decimal = Decimal("0")
    price_unit: Decimal = Decimal("0.000001")
    currency: str = "USD"
    latency: float = 0.0
    time_to_first_token: float | None = None
    time_to_generate: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def prompt_price(self) -> Decimal:
        return self.prompt_tokens * self.prompt_unit_price * self.price_unit

    @property
    def completion_price(self) -> Decimal:
        return self.completion_tokens * self.completion_unit_price * self.price_unit

    @property
    def total_price(self) -> Decimal:
        return self.prompt_price + self.completion_price


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A complete tool call, emitted once the model has finished writing it."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Always the last event of a stream."""

    usage: Usage
    finish_reason: str | None = None


LLMEvent = TextDelta | ToolCallDelta | UsageReport


@dataclass(frozen=True, slots=True)
class LLMResult:
    text: str
    tool_calls: Sequence[ToolCall]
    usage: Usage
    finish_reason: str | None = None


class LLM(Protocol):
    """A chat or completion model of one provider."""

    supports_tools: bool
    supports_vision: bool

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        """Yield text and tool-call deltas as they arrive, then one UsageReport. Raises ProviderError subclasses."""
        ...

    async def invoke(self, request: LLMRequest) -> LLMResult:
        """Run the model to the end and return the whole answer."""
        ...


class EmbeddingModel(Protocol):
    """A text embedding model."""

    name: str

    @property
    def dimensions(self) -> int:
        """Length of each vector (read-only: models learn it from their config or first reply)."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents; one vector per text, L2-normalised."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query (some models encode queries differently)."""
        ...


class RerankModel(Protocol):
    """A rerank model: scores documents against a query."""

    name: str

    def rerank(self, query: str, documents: Sequence[str], top_n: int | None = None) -> list[tuple[int, float]]:
        """Return (index into documents, relevance score in [0, 1]), best first."""
        ...


class SpeechToTextModel(Protocol):
    """A speech-to-text model."""

    name: str

    def transcribe(self, audio: bytes, filename: str, mime_type: str) -> str:
        """The text spoken in `audio`."""
        ...


class ModerationModel(Protocol):
    """A moderation model (Dify's `openai_moderation` content moderation)."""

    name: str

    def flagged(self, text: str) -> bool:
        """Whether the model flags `text`."""
        ...


class TextToSpeechModel(Protocol):
    """A text-to-speech model."""

    name: str

    def voices(self) -> list[str]:
        """The voices it offers, the default first."""
        ...

    def speak(self, text: str, voice: str) -> bytes:
        """`text` read aloud, as MP3."""
        ...


class ModelResolver(Protocol):
    """Finds the configured model for a DSL's (provider, name). Raises ProviderNotInitialized when absent."""

    def llm(self, provider: str, model: str) -> LLM:
        """The LLM the DSL names; `provider` as written in the DSL (`openai`, `langgenius/openai/openai`, ...)."""
        ...

    def embedding(self, provider: str | None = None, model: str | None = None) -> EmbeddingModel:
        """The embedding model named, or the default (the embedded offline model) when both are None."""
        ...

    def rerank(self, provider: str, model: str) -> RerankModel:
        """The rerank model named."""
        ...

    def speech_to_text(self) -> SpeechToTextModel:
        """The first speech2text model of providers.yaml; ProviderNotInitialized when there is none."""
        ...

    def text_to_speech(self) -> TextToSpeechModel:
        """The first tts model of providers.yaml; ProviderNotInitialized when there is none."""
        ...

    def moderation(self) -> ModerationModel:
        """The moderation model of `openai_moderation` content moderation."""
        ...


async def collect(events: AsyncIterator[LLMEvent]) -> LLMResult:
    """Fold a stream into the blocking result, so blocking and streaming answers cannot drift apart."""
    text: list[str] = []
    calls: list[ToolCall] = []
    usage, finish_reason = Usage(), None
    async for event in events:
        match event:
            case TextDelta(chunk):
                text.append(chunk)
            case ToolCallDelta(call):
                calls.append(call)
            case UsageReport(reported, reason):
                usage, finish_reason = reported, reason
    return LLMResult("".join(text), calls, usage, finish_reason)


DEFAULT_CONTEXT_SIZE = 16_384  # a model whose providers.yaml entry gives no context_size


def context_size(llm: LLM) -> int:
    """The model's context window in tokens: its providers.yaml `context_size`, else DEFAULT_CONTEXT_SIZE."""
    target = getattr(llm, "target", None)  # HttpLLM exposes its ModelTarget; other models take the default
    size = getattr(getattr(target, "settings", None), "context_size", None)
    return int(size) if size else DEFAULT_CONTEXT_SIZE


M_co = TypeVar("M_co", covariant=True)


class ModelFactory(Protocol[M_co]):
    """What a provider registry holds: builds one model of a configured provider (a class or a function)."""

    def __call__(self, target: ModelTarget, clients: ClientPool, /) -> M_co:
        """The model `target` names, its HTTP calls made through `clients`."""
        ...


LLMProviderFactory = ModelFactory[LLM]
EmbeddingProviderFactory = ModelFactory[EmbeddingModel]
RerankProviderFactory = ModelFactory[RerankModel]
SpeechToTextProviderFactory = ModelFactory[SpeechToTextModel]
TextToSpeechProviderFactory = ModelFactory[TextToSpeechModel]
ModerationProviderFactory = ModelFactory[ModerationModel]
