"""What the engine needs from outside. The services layer implements these; the engine has no storage or HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from openify.providers.base import ChatMessage, ModelResolver
from openify.security.document_limits import DocumentLimits
from openify.settings import SandboxSettings
from openify.tools.base import AgentStrategyDeclaration, ResolvedTool, ToolCall, ToolMessage, ToolRef


class KnowledgeRetriever(Protocol):
    """Retrieval over the app's knowledge bases."""

    async def retrieve(
        self, dataset_ids: Sequence[str], query: str, config: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        """Records `{content, title, metadata: {dataset_id, document_id, score, ...}}`, best first.

        `config` is the node's data: retrieval_mode, multiple_retrieval_config, single_retrieval_config,
        metadata_filtering_*; unknown or encrypted dataset ids are skipped, never an error."""
        ...


class ConversationVariables(Protocol):
    """Conversation variables of chatflows, kept between turns."""

    async def load(self, conversation_id: str) -> Mapping[str, Any]:
        """Stored values by name; names never written are absent (the DSL default applies)."""
        ...

    async def save(self, conversation_id: str, name: str, value: Any) -> None:
        """Store a value an assigner wrote."""
        ...


class ConversationHistory(Protocol):
    """Past turns of a chatflow conversation, for LLM memory."""

    async def messages(self, conversation_id: str, limit: int) -> Sequence[ChatMessage]:
        """The last `limit` turns as user/assistant messages, oldest first (the current query excluded)."""
        ...


class CodeSandbox(Protocol):
    """Runs code-node snippets isolated from the server (openify.security.sandbox.Sandbox fits)."""

    limits: SandboxSettings  # the code node checks outputs against these (OPENIFY_SANDBOX__MAX_*)

    async def arun(
        self, language: Literal["python3", "javascript"], code: str, inputs: dict[str, Any]
    ) -> dict[str, Any]:
        """Call `main(**inputs)` and return its dict; raises an exception with a clear message on failure."""
        ...


class HttpResponse(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str: ...


class HttpClient(Protocol):
    """Outbound HTTP with the SSRF guard (openify.security.ssrf.GuardedHttpClient fits)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Any = None,
        params: Any = None,
        content: bytes | str | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
        write_timeout_s: float | None = None,
        follow_redirects: bool = True,
        verify: bool = True,
    ) -> HttpResponse:
        """Send one request; raises on refused targets, timeouts and oversize bodies."""
        ...


class FileStore(Protocol):
    """Access to files named by file variables (uploads, remote URLs, tool files)."""

    async def read(self, file: Mapping[str, Any], user_id: str = "") -> bytes:
        """The file's bytes, if the file is the run's app's and (an upload) the run's end user's (`sys.user_id`)."""
        ...

    async def save(self, content: bytes, filename: str, mime_type: str) -> Mapping[str, Any]:
        """Store bytes produced by a node (HTTP file responses) and return a Dify File mapping."""
        ...


class ToolInvoker(Protocol):
    """Tools and agent strategies of every tool source (builtin, Dify plugins, MCP, ...): the tool manager."""

    async def resolve(self, ref: ToolRef) -> ResolvedTool:
        """The tool a DSL names (bare builtin names mapped to plugins as Dify maps them); raises `ToolNotFound`
        naming the missing plugin or provider."""
        ...

    def invoke(self, tool: ResolvedTool, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        """Run it with `parameters` cast to its declared types (defaults filled in); raises `ToolError`."""
        ...

    async def find_strategy(self, provider: str, strategy: str) -> AgentStrategyDeclaration | None:
        """The agent strategy an agent node names, or None when no source has it."""
        ...

    def invoke_strategy(
        self, provider: str, strategy: str, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        """Run an agent strategy (see `openify.tools.base.AgentStrategies.invoke_strategy`)."""
        ...


@dataclass(frozen=True, slots=True)
class Ports:
    """Everything outside the engine. A port left None makes the nodes needing it fail with a clear error."""

    models: ModelResolver | None = None
    knowledge: KnowledgeRetriever | None = None
    conversation_variables: ConversationVariables | None = None
    history: ConversationHistory | None = None
    sandbox: CodeSandbox | None = None
    http: HttpClient | None = None
    files: FileStore | None = None
    document_limits: DocumentLimits = field(default_factory=DocumentLimits)  # caps of the document-extractor
    tools: ToolInvoker | None = None
