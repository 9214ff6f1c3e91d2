"""`tool`: one tool of any tool source (builtin, Dify plugins, MCP, ...) through the tools port, as Dify's ToolNode.

Its `text` streams to Answer/End nodes as the tool yields it; outputs are `text`, `files`, `json` and the
variables the tool sets; `execution_metadata.tool_info` names the tool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, StreamChunk, selector
from openify.engine.ports import ToolInvoker
from openify.tools.base import (
    FileMessage,
    JsonMessage,
    LinkMessage,
    ResolvedTool,
    TextMessage,
    ToolCall,
    ToolError,
    ToolMessage,
    ToolNotFound,
    ToolRef,
    VariableMessage,
)

PROVIDER_TYPES = ("builtin", "plugin", "mcp", "api", "workflow")


def input_value(ctx: NodeContext, entry: Any, *, required: bool = False) -> tuple[bool, Any]:
    """(present, value) of one Dify ToolInput (`variable`, `mixed` or `constant`); plain legacy values as is."""
    if not isinstance(entry, Mapping) or "type" not in entry:
        return entry is not None, entry
    kind, value = entry.get("type"), entry.get("value")
    if value is None:
        return False, None
    if kind == "variable":
        sel = selector(value)
        if not ctx.pool.has(sel):
            if required:
                raise NodeError(f"Variable {sel} does not exist", "ToolParameterError")
            return False, None
        return True, ctx.pool.get(sel)
    if kind == "mixed":
        return True, ctx.pool.render(str(value))
    if kind == "constant":
        # Dify renders constants as templates too (a constant may hold `{{#sys.query#}}`); non-strings stay
        return True, ctx.pool.render(value) if isinstance(value, str) else value
    raise NodeError(f"Unknown tool input type '{kind}'", "ToolParameterError")


def call_of(ctx: NodeContext) -> ToolCall:
    def sys(name: str) -> str | None:
        value = ctx.pool.get(["sys", name])
        return str(value) if value not in (None, "") else None

    return ToolCall(
        user_id=sys("user_id") or "",
        app_id=sys("app_id"),
        conversation_id=sys("conversation_id"),
        workflow_run_id=sys("workflow_run_id"),
    )


async def file_of(ctx: NodeContext, message: FileMessage) -> Mapping[str, Any]:
    """A Dify File for a file a tool made: stored as a tool file, or a link the tool gave."""
    if message.data is not None:
        store = ctx.require("files")
        saved: Mapping[str, Any] = await store.save(message.data, message.filename or "file", message.mime_type)
        return saved
    return {
        "dify_model_identity": "__dify__file__",
        "type": message.mime_type.split("/")[0]
        if message.mime_type.startswith(("image/", "audio/", "video/"))
        else "document",
        "transfer_method": "remote_url",
        "remote_url": message.url,
        "url": message.url,
        "filename": message.filename,
        "mime_type": message.mime_type,
    }


class ToolNode(Node):
    type = "tool"

    def tool_info(self) -> dict[str, Any]:
        d = self.data
        return {
            "provider_type": str(d.get("provider_type") or ""),
            "provider_id": str(d.get("provider_id") or ""),
            "plugin_unique_identifier": d.get("plugin_unique_identifier"),
        }

    async def resolve(self, tools: ToolInvoker) -> ResolvedTool:
        d = self.data
        provider_type = str(d.get("provider_type") or "builtin")
        if provider_type not in PROVIDER_TYPES:
            raise NodeError(f"Unknown tool provider type {provider_type!r}", "ToolNodeError")
        provider, name = str(d.get("provider_id") or d.get("provider_name") or ""), str(d.get("tool_name") or "")
        if not provider or not name:
            raise NodeError("The tool node names no provider_id or tool_name.", "ToolNodeError")
        ref = ToolRef(provider_type, provider, name)  # type: ignore[arg-type]  # checked above
        try:
            return await tools.resolve(ref)
        except ToolNotFound as exc:
            raise NodeError(f"Failed to get tool runtime: {exc}", "ToolProviderNotFoundError") from exc

    def parameters(self, ctx: NodeContext, tool: ResolvedTool) -> tuple[dict[str, Any], dict[str, Any]]:
        """(parameters to invoke with, parameters as logged in `inputs`)."""
        d = self.data
        declared = {p.name: p for p in tool.tool.parameters}
        given: dict[str, Any] = {}
        entries = d.get("tool_parameters")
        for name, entry in entries.items() if isinstance(entries, Mapping) else ():
            p = declared.get(name)
            present, value = input_value(ctx, entry, required=bool(p and p.required))
            if present:
                given[name] = value
        logged = dict(given)
        # Form parameters come from tool_configurations: plain values (legacy), or ToolInputs when the node has
        # `tool_node_version` (Dify resolves those against the pool); they win over tool_parameters, as there.
        configs = d.get("tool_configurations") or {}
        versioned = d.get("tool_node_version") is not None
        for name, entry in configs.items() if isinstance(configs, Mapping) else ():
            p = declared.get(name)
            if p is not None and p.form != "form":
                continue
            present, value = input_value(ctx, entry) if versioned else (entry is not None, entry)
            if present:
                given[name] = value
        for name, p in declared.items():
            if p.type == "secret-input" and name in logged:
                logged[name] = "*" * len(str(logged[name]))
        return given, logged

    async def stream(self, ctx: NodeContext) -> AsyncIterator[Any]:
        tools: ToolInvoker = ctx.require("tools")
        tool = await self.resolve(tools)
        parameters, logged = self.parameters(ctx, tool)
        text: list[str] = []
        files: list[Mapping[str, Any]] = []
        json_out: list[Any] = []
        variables: dict[str, Any] = {}
        name = str(self.data.get("provider_name") or tool.provider.id)
        try:
            message: ToolMessage
            async for message in tools.invoke(tool, parameters, call_of(ctx)):
                match message:
                    case TextMessage(text=piece):
                        text.append(piece)
                        yield StreamChunk((self.id, "text"), piece)
                    case LinkMessage(url=url):
                        piece = f"Link: {url}\n"
                        text.append(piece)
                        yield StreamChunk((self.id, "text"), piece)
                    case JsonMessage(data=data):
                        if data:
                            json_out.append(data)
                    case FileMessage():
                        files.append(await file_of(ctx, message))
                    case VariableMessage(name=var, value=value, stream=True):
                        if not isinstance(value, str):
                            raise NodeError(
                                "When 'stream' is True, 'variable_value' must be a string.", "ToolNodeError"
                            )
                        variables[var] = str(variables.get(var, "")) + value
                        yield StreamChunk((self.id, var), value)
                    case VariableMessage(name=var, value=value):
                        variables[var] = value
                    case _:
                        pass  # logs and retriever resources are the agent node's
        except ToolNotFound as exc:
            raise NodeError(f"Failed to get tool runtime: {exc}", "ToolProviderNotFoundError") from exc
        except ToolError as exc:
            raise NodeError(f"Failed to invoke tool {name}: {exc}", "ToolInvokeError") from exc
        outputs = {"text": "".join(text), "files": files, "json": json_out or [{"data": []}], **variables}
        yield NodeResult(outputs=outputs, inputs=logged, metadata={"tool_info": self.tool_info()}, files=files)


def register(r: Any) -> None:
    r.nodes.register(ToolNode.type, ToolNode)
