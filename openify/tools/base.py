"""The contract of tools: where they come from (a `ToolSource` per Dify `provider_type`), what they declare,
and the typed messages an invocation yields.

Every tool caller (the tool node, the agent node, agent-chat apps, plugins calling back) goes through one
`ToolSource` registry keyed by Dify's `provider_type` (`builtin`, `plugin`, `mcp`, `api`, `workflow`);
none of them knows where a tool comes from. Messages mirror Dify's `ToolInvokeMessage` types, so a
plugin's stream maps onto them one to one, and the wire format (Dify's SSE, the plugin line protocol)
is built only at the edges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from openify.errors import OpenifyError
from openify.providers.base import ModelResolver
from openify.settings import Settings

if TYPE_CHECKING:
    from openify.storage.db import Database

ProviderType = Literal["builtin", "plugin", "mcp", "api", "workflow"]
ParameterForm = Literal["llm", "form", "schema"]
I18n = Mapping[str, str]  # {"en_US": "...", "zh_Hans": "..."}, as Dify's I18nObject


# ---------------------------------------------------------------------------------------------- identity


@dataclass(frozen=True, slots=True)
class ToolRef:
    """Which tool: Dify's `provider_type`, its provider id and the tool's name.

    For plugins the provider id is the full `author/plugin/provider` (`langgenius/json_process/json_process`);
    sources normalise bare names (`json_process` -> `langgenius/json_process/json_process`) as Dify maps them.
    """

    provider_type: ProviderType
    provider: str
    tool: str


# ---------------------------------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class ToolParameter:
    """One declared parameter, as Dify's `ToolParameter`.

    `type` is Dify's: string, number, boolean, select, secret-input, file, files, array, object,
    model-selector, app-selector, tools-selector, any, dynamic-select, checkbox. `form` says who fills it:
    the model (`llm`), the app builder (`form`), or the node's schema (`schema`).
    """

    name: str
    type: str
    form: ParameterForm = "llm"
    required: bool = False
    label: I18n = field(default_factory=dict)
    human_description: I18n = field(default_factory=dict)
    llm_description: str = ""
    default: Any = None
    options: Sequence[Mapping[str, Any]] = ()  # [{"value": ..., "label": {...}}] for select
    min: float | None = None
    max: float | None = None
    input_schema: Mapping[str, Any] | None = None  # JSON Schema for object/array parameters (MCP, OpenAPI)


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    """One tool of a provider: its name, labels, descriptions and parameters."""

    name: str
    label: I18n
    description: str  # what the model reads (Dify's description.llm)
    human_description: I18n = field(default_factory=dict)
    parameters: Sequence[ToolParameter] = ()
    output_schema: Mapping[str, Any] | None = None  # declared variables (Dify's output_schema)

    def llm_schema(self) -> dict[str, Any]:
        """JSON Schema of the `llm`-form parameters: what a model fills when it calls this tool."""
        props: dict[str, Any] = {}
        required: list[str] = []
        for p in self.parameters:
            if p.form != "llm":
                continue
            props[p.name] = dict(p.input_schema) if p.input_schema else _json_type(p)
            if p.llm_description:
                props[p.name].setdefault("description", p.llm_description)
            if p.required:
                required.append(p.name)
        return {"type": "object", "properties": props, "required": required}


def _json_type(p: ToolParameter) -> dict[str, Any]:
    match p.type:
        case "number":
            return {"type": "number"}
        case "boolean" | "checkbox":
            return {"type": "boolean"}
        case "select":
            return {"type": "string", "enum": [o.get("value") for o in p.options]}
        case "array" | "files":
            return {"type": "array"}
        case "object":
            return {"type": "object"}
        case _:
            return {"type": "string"}


@dataclass(frozen=True, slots=True)
class ToolProviderDeclaration:
    """A provider (a set of tools sharing credentials), as Dify lists it."""

    provider_type: ProviderType
    id: str  # what a DSL's provider_id names: `langgenius/maths/maths`, an MCP server_identifier, ...
    name: str
    label: I18n
    description: I18n = field(default_factory=dict)
    icon: str = ""
    credentials_schema: Sequence[Mapping[str, Any]] = ()  # Dify's provider credential form items
    tools: Sequence[ToolDeclaration] = ()

    def find_tool(self, name: str) -> ToolDeclaration | None:
        return next((t for t in self.tools if t.name == name), None)


@dataclass(frozen=True, slots=True)
class ResolvedTool:
    """A tool found for a DSL's reference: the normalised ref (bare names mapped as Dify maps them), its
    provider and its declaration."""

    ref: ToolRef
    provider: ToolProviderDeclaration
    tool: ToolDeclaration


# ---------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class TextMessage:
    text: str


@dataclass(frozen=True, slots=True)
class JsonMessage:
    data: Any  # Dify's json_object


@dataclass(frozen=True, slots=True)
class LinkMessage:
    url: str


@dataclass(frozen=True, slots=True)
class FileMessage:
    """A file the tool made (Dify's blob, image, image_link and file messages all end up as one).

    Either `data` (bytes made by the tool) or `url` (a link the tool gives) is set.
    """

    mime_type: str
    filename: str = ""
    data: bytes | None = None
    url: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VariableMessage:
    """A named output variable; `stream` values are string pieces appended as they arrive."""

    name: str
    value: Any
    stream: bool = False


@dataclass(frozen=True, slots=True)
class LogMessage:
    """An agent strategy's log entry (Dify's `agent_log`); a later entry with the same id updates it."""

    id: str
    label: str
    status: Literal["start", "success", "error"]
    data: Mapping[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    error: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetrieverResourcesMessage:
    resources: Sequence[Mapping[str, Any]]
    context: str = ""


ToolMessage = (
    TextMessage | JsonMessage | LinkMessage | FileMessage | VariableMessage | LogMessage | RetrieverResourcesMessage
)


# ---------------------------------------------------------------------------------------------- invocation


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Who calls, for which app and conversation: what a plugin request's optional keys carry."""

    user_id: str
    app_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    workflow_run_id: str | None = None
    call_depth: int = 0  # workflow-as-tool nesting (Dify's WORKFLOW_CALL_MAX_DEPTH)


class ToolError(OpenifyError):
    """A tool failed: its own error, handed back to the model or the node's error strategy."""

    code, status, message = "tool_error", 400, "The tool failed."


class ToolNotFound(ToolError):
    """A DSL or an agent names a tool (or its provider) that no source has: a missing plugin, an unknown MCP server."""

    code, status, message = "tool_not_found", 404, "Tool not found."


class ToolSource(Protocol):
    """Where tools of one `provider_type` come from: builtin, Dify plugins, MCP servers, OpenAPI, workflows.

    A source keeps its own credentials (a plugin provider's stored credentials, an MCP server's headers, an
    OpenAPI tool's auth): callers never see them."""

    provider_type: ClassVar[ProviderType]

    async def providers(self) -> Sequence[ToolProviderDeclaration]:
        """Every provider this source has now (installed plugins, added MCP servers, ...)."""
        ...

    async def find_provider(self, provider_id: str) -> ToolProviderDeclaration | None:
        """The provider a DSL names (bare or full id), or None when it is not installed or added."""
        ...

    def invoke(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        """Run one tool; yields its messages as they come; raises `ToolError` (or `ToolNotFound`)."""
        ...


class ToolHost(Protocol):
    """What tool sources need from the rest of the server (backwards invocations of Dify plugins, workflow tools).

    The services layer implements it; a source gets it through `ToolSourceContext`. Methods are added here as
    sources need them (LLM, embedding and rerank calls, app invocation, key-value storage, files)."""

    @property
    def models(self) -> ModelResolver:
        """The configured models (the builtin `audio` tools, plugins' backwards model calls)."""
        ...

    async def read_file(self, file: Mapping[str, Any], call: ToolCall) -> bytes:
        """The bytes of a Dify File mapping a tool was given (uploads, tool files, remote URLs), read as the calling
        app and end user may: another app's or user's file is refused."""
        ...


@runtime_checkable
class BackwardsHost(ToolHost, Protocol):
    """A `ToolHost` that also serves Dify plugins' backwards invocations (openify/tools/dify_plugins/backwards.py).

    The server's host is one; a host without these (a test's) still runs plugins, whose calls back then fail."""

    def invoke_tool(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        """Run a tool of any source, resolved as a DSL's tool is: a Dify plugin's backwards tool invocation."""
        ...

    def invoke_app(self, app_id: str, request: Mapping[str, Any], call: ToolCall) -> AsyncIterator[Mapping[str, Any]]:
        """Run an app as its Service API endpoint would (chat, completion or workflow, by the app's mode): the
        blocking response body, or each streamed event's body when `request["response_mode"]` is streaming."""
        ...

    async def save_tool_file(self, data: bytes, filename: str, mime_type: str) -> Mapping[str, Any]:
        """Keep a file a tool made; returns Dify's File mapping (id, filename, mime_type, size, signed url)."""
        ...

    def tool_file_upload_url(self, upload_id: str) -> str:
        """A signed URL a Dify plugin POSTs a file to (the SDK's `session.file.upload`), or "" when the server has
        no base URL (`OPENIFY_FILES_URL`) that a plugin process could reach."""
        ...


@dataclass(frozen=True, slots=True)
class ToolSourceContext:
    """What a tool source is built from, once per server."""

    settings: Settings
    host: ToolHost
    db: Database | None = None  # for sources that keep records: installed Dify plugins, their credentials


class ToolSourceFactory(Protocol):
    def __call__(self, context: ToolSourceContext) -> ToolSource:
        """Build the source for one server."""
        ...


@dataclass(frozen=True, slots=True)
class AgentStrategyDeclaration:
    """One agent strategy of an agent-strategy plugin (`langgenius/agent/agent` + `function_calling`)."""

    provider: str  # full id, e.g. langgenius/agent/agent
    name: str  # e.g. function_calling, ReAct
    label: I18n
    description: str = ""
    parameters: Sequence[ToolParameter] = ()


class AgentStrategies(Protocol):
    """Agent strategies (from Dify agent-strategy plugins) that the agent node runs.

    They enter through their own registry, `Registries.agent_strategy_sources` (name -> `AgentStrategiesFactory`,
    built from the same `ToolSourceContext`): the plugin host registers one under `plugin`; the services' tool
    manager asks each in turn, so the agent node never knows where a strategy comes from."""

    async def find_strategy(self, provider: str, strategy: str) -> AgentStrategyDeclaration | None:
        """The strategy a DSL's agent node names, or None when its plugin is not installed."""
        ...

    def invoke_strategy(
        self, provider: str, strategy: str, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        """Run the strategy: `LogMessage`s as it goes (Dify's agent_log), then text/json/files of its answer.

        `parameters` are Dify's agent_strategy_params (model selector, full tool entities, instruction, query,
        maximum_iterations, ...); raises `ToolError` on failure."""
        ...


class AgentStrategiesFactory(Protocol):
    def __call__(self, context: ToolSourceContext) -> AgentStrategies:
        """Build the strategies of one server."""
        ...
