"""The `mcp` tool source: MCP servers added by `server_identifier` (Dify's `provider_type: mcp`), called with the
official `mcp` SDK's client.

Transports are chosen as Dify's MCPClient chooses them: a URL whose path ends in `/sse` speaks SSE; any other is
tried as streamable HTTP first, then SSE. Every connection goes through the SSRF guard (hosts in
`OPENIFY_HTTP_NODE__ALLOW_HOSTS` excepted). `tools/list` is cached in the provider's row and refreshed on demand.
Results map as Dify maps them: text that parses as JSON becomes json, images and audio become files,
`structuredContent` becomes variables."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import shlex
import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import anyio
import httpx
import mcp.types as mt
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.message import SessionMessage
from sqlalchemy import select

from openify.errors import InvalidParam, NotFound
from openify.registry import Registries
from openify.security import isolation
from openify.security.ssrf import guarded_async_client
from openify.settings import Settings
from openify.storage.tables import McpToolProvider
from openify.tools.base import (
    FileMessage,
    JsonMessage,
    ProviderType,
    TextMessage,
    ToolCall,
    ToolDeclaration,
    ToolError,
    ToolMessage,
    ToolNotFound,
    ToolParameter,
    ToolProviderDeclaration,
    ToolRef,
    ToolSourceContext,
    VariableMessage,
)

_TYPES = {"integer": "number", "number": "number", "boolean": "boolean", "array": "array", "object": "object"}


def _program_paths(argv: Sequence[str]) -> list[Path]:
    """Read-only binds a command needs beyond /usr: its program's prefix, and folders of absolute path arguments."""
    paths: list[Path] = []
    program = shutil.which(argv[0])
    if program is not None:
        prefix = Path(program).resolve().parent.parent
        if not prefix.is_relative_to("/usr"):
            paths.append(prefix)
    for arg in argv[1:]:
        if arg.startswith("/") and Path(arg).exists():
            paths.append(Path(arg).resolve().parent)
    return paths


def declaration_of(row: McpToolProvider) -> ToolProviderDeclaration:
    tools = [_tool(t) for t in row.tools or [] if isinstance(t, Mapping)]
    label = {"en_US": row.name, "zh_Hans": row.name}
    return ToolProviderDeclaration("mcp", row.identifier, row.name, label, tools=tools)


def _tool(t: Mapping[str, Any]) -> ToolDeclaration:
    """Every `inputSchema` property is an llm-form parameter (Dify's MCPToolProviderController)."""
    schema = t.get("inputSchema") or {}
    required = set(schema.get("required") or [])
    params = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = _TYPES.get(str(prop.get("type")), "string")
        params.append(
            ToolParameter(
                name=name,
                type=kind,
                form="llm",
                required=name in required,
                label={"en_US": name},
                llm_description=str(prop.get("description") or ""),
                input_schema=dict(prop) if prop.get("type") in ("array", "object") else None,
            )
        )
    name = str(t.get("name") or "")
    description = str(t.get("description") or "")
    return ToolDeclaration(name, {"en_US": name}, description, {"en_US": description}, params, t.get("outputSchema"))


class McpConnector:
    """Opens a session with one MCP server over the transport Dify would choose."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _client(
        self,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.AsyncClient:
        return guarded_async_client(self._settings.http_node, headers, timeout=timeout, auth=auth)

    @asynccontextmanager
    async def session(self, url: str, headers: Mapping[str, str], timeout_s: float) -> AsyncIterator[ClientSession]:
        if urlparse(url).scheme not in ("http", "https"):
            raise InvalidParam("An MCP server URL must be http or https", params="url")
        if not urlparse(url).path.rstrip("/").endswith("/sse"):
            stack = AsyncExitStack()
            try:
                session = await stack.enter_async_context(self._streamable(url, headers, timeout_s))
            except Exception:  # no streamable HTTP here (or not reachable): Dify then tries SSE
                await stack.aclose()
            else:
                async with stack:
                    yield session
                return
        async with self._sse(url, headers, timeout_s) as s:
            yield s

    @asynccontextmanager
    async def stdio(self, command: str, work_dir: Path) -> AsyncIterator[ClientSession]:
        """A stdio server (which Dify refuses, dify#22495), confined as plugins are (`security/isolation.py`):
        its own folder, the host's /usr and its program's prefix read-only, no network, no server environment.
        The SDK's stdio client starts processes itself and cannot pass the seccomp descriptor bubblewrap needs, so
        the newline-delimited JSON-RPC framing of the stdio transport is done here over the confined pipes."""
        argv = shlex.split(command)
        if not argv:
            raise InvalidParam("An MCP stdio command is empty", params="command")
        work_dir.mkdir(parents=True, exist_ok=True)
        sandbox = self._settings.sandbox
        confinement = isolation.Confinement(
            argv=argv,
            cwd=work_dir,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work_dir), "LANG": "C.UTF-8"},  # noqa: TID251
            ro_paths=_program_paths(argv),
            rw_paths=[work_dir],
            network="none",
            max_open_files=1024,
            bwrap_path=sandbox.bwrap_path,
            allow_weak=sandbox.allow_weak,
        )
        pipe = asyncio.subprocess.PIPE
        proc = await isolation.spawn(confinement, stdin=pipe, stdout=pipe, stderr=asyncio.subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None  # noqa: S101 - asked for above
        stdin, stdout = proc.stdin, proc.stdout
        to_client, read = anyio.create_memory_object_stream[SessionMessage | Exception](16)
        write, from_client = anyio.create_memory_object_stream[SessionMessage](16)

        async def pump_out() -> None:
            async with to_client:
                async for line in stdout:
                    if line.strip():
                        try:
                            message = mt.JSONRPCMessage.model_validate_json(line)
                        except ValueError as exc:
                            await to_client.send(exc)
                            continue
                        await to_client.send(SessionMessage(message))

        async def pump_in() -> None:
            async with from_client:
                async for item in from_client:
                    data = item.message.model_dump_json(by_alias=True, exclude_none=True)
                    stdin.write(data.encode() + b"\n")
                    await stdin.drain()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump_out)
                tg.start_soon(pump_in)
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    yield s
                tg.cancel_scope.cancel()
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()

    @asynccontextmanager
    async def _streamable(self, url: str, headers: Mapping[str, str], timeout_s: float) -> AsyncIterator[ClientSession]:
        client = streamablehttp_client(
            url, dict(headers), timeout=timedelta(seconds=timeout_s), httpx_client_factory=self._client
        )
        async with client as (read, write, _), ClientSession(read, write) as s:
            await s.initialize()
            yield s

    @asynccontextmanager
    async def _sse(self, url: str, headers: Mapping[str, str], timeout_s: float) -> AsyncIterator[ClientSession]:
        async with (
            sse_client(url, dict(headers), timeout=timeout_s, httpx_client_factory=self._client) as (
                read,
                write,
            ),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            yield s


class McpToolSource:
    provider_type: ClassVar[ProviderType] = "mcp"

    def __init__(self, context: ToolSourceContext) -> None:
        if context.db is None:
            raise RuntimeError("the mcp tool source keeps its providers in the database")
        self._db, self.connector = context.db, McpConnector(context.settings)
        self._work = context.settings.data_dir / "mcp"

    def _open(self, url: str, command: str, headers: Mapping[str, str], timeout_s: float, identifier: str) -> Any:
        if command:
            return self.connector.stdio(command, self._work / identifier)
        return self.connector.session(url, headers, timeout_s)

    # --- providers ------------------------------------------------------------------------------------------
    def rows(self) -> list[McpToolProvider]:
        with self._db.session() as s:
            return list(s.scalars(select(McpToolProvider).order_by(McpToolProvider.created_at)))

    def row(self, identifier: str) -> McpToolProvider | None:
        with self._db.session() as s:
            return s.scalar(select(McpToolProvider).where(McpToolProvider.identifier == identifier))

    async def add(
        self, identifier: str, url: str, name: str | None = None, headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0, command: str = "",
    ) -> McpToolProvider:  # fmt: skip
        if not identifier or len(identifier) > 64 or await asyncio.to_thread(self.row, identifier) is not None:
            raise InvalidParam(f"MCP provider {identifier!r} is empty, too long or exists already", params="identifier")
        if not identifier.replace("-", "").replace("_", "").isalnum():
            raise InvalidParam("An MCP identifier is letters, digits, - and _", params="identifier")
        tools = await list_over(self._open(url, command, headers or {}, timeout_s, identifier))
        row = McpToolProvider(
            identifier=identifier, name=name or identifier, url=url, command=command, headers=dict(headers or {}),
            timeout_s=timeout_s, tools=tools,
        )  # fmt: skip
        await asyncio.to_thread(self._insert, row)
        return row

    def _insert(self, row: McpToolProvider) -> None:
        with self._db.session() as s:
            s.add(row)
            s.commit()
            s.refresh(row)
            s.expunge(row)

    async def refresh(self, identifier: str) -> McpToolProvider:
        row = await asyncio.to_thread(self.row, identifier)
        if row is None:
            raise NotFound(f"MCP provider {identifier!r} not found")
        tools = await list_over(self._open(row.url, row.command, row.headers or {}, row.timeout_s, row.identifier))
        return await asyncio.to_thread(self._store_tools, row.id, tools)

    def _store_tools(self, row_id: Any, tools: Any) -> McpToolProvider:
        with self._db.session() as s:
            found = s.get(McpToolProvider, row_id)
            assert found is not None  # noqa: S101 - read above
            found.tools = tools
            s.commit()
            s.refresh(found)
            s.expunge(found)
            return found

    def remove(self, identifier: str) -> None:
        with self._db.session() as s:
            row = s.scalar(select(McpToolProvider).where(McpToolProvider.identifier == identifier))
            if row is None:
                raise NotFound(f"MCP provider {identifier!r} not found")
            s.delete(row)
            s.commit()

    # --- the ToolSource protocol ----------------------------------------------------------------------------
    async def providers(self) -> Sequence[ToolProviderDeclaration]:
        return [declaration_of(r) for r in await asyncio.to_thread(self.rows)]

    async def find_provider(self, provider_id: str) -> ToolProviderDeclaration | None:
        row = await asyncio.to_thread(self.row, provider_id)
        return declaration_of(row) if row is not None else None

    async def invoke(self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall) -> AsyncIterator[ToolMessage]:
        del call  # MCP servers see no Openify user or app
        row = await asyncio.to_thread(self.row, ref.provider)
        if row is None or declaration_of(row).find_tool(ref.tool) is None:
            raise ToolNotFound(f"MCP tool {ref.provider}/{ref.tool} not found")
        try:
            opened = self._open(row.url, row.command, row.headers or {}, row.timeout_s, row.identifier)
            async with opened as session:
                result = await session.call_tool(ref.tool, dict(parameters), timedelta(seconds=row.timeout_s))
        except Exception as exc:
            raise ToolError(f"MCP tool {ref.provider}/{ref.tool} failed: {_reason(exc)}") from None
        if result.isError:
            text = " ".join(c.text for c in result.content if isinstance(c, mt.TextContent))
            raise ToolError(text or f"MCP tool {ref.tool} answered an error")
        for message in map_result(result):
            yield message


async def list_remote(
    connector: McpConnector, url: str, headers: Mapping[str, str], timeout_s: float
) -> list[dict[str, Any]]:
    """An HTTP server's `tools/list`, as JSON; any failure is a clear InvalidParam."""
    return await list_over(connector.session(url, headers, timeout_s))


async def list_over(opened: AbstractAsyncContextManager[ClientSession]) -> list[dict[str, Any]]:
    try:
        async with opened as session:
            listed = await session.list_tools()
    except InvalidParam:
        raise
    except Exception as exc:
        raise InvalidParam(f"Cannot list the MCP server's tools: {_reason(exc)}") from None
    return [t.model_dump(mode="json", exclude_none=True) for t in listed.tools]


def map_result(result: mt.CallToolResult) -> list[ToolMessage]:
    """Dify's mapping of a CallToolResult to tool messages."""
    out: list[ToolMessage] = []
    for c in result.content:
        if isinstance(c, mt.TextContent):
            out.extend(_text(c.text))
        elif isinstance(c, mt.ImageContent | mt.AudioContent):
            try:
                data = base64.b64decode(c.data, validate=True)
            except (binascii.Error, ValueError):
                continue
            out.append(FileMessage(mime_type=c.mimeType, data=data))
        elif isinstance(c, mt.EmbeddedResource):
            res = c.resource
            if isinstance(res, mt.TextResourceContents):
                out.extend(_text(res.text))
            else:
                mime = res.mimeType or "application/octet-stream"
                out.append(FileMessage(mime_type=mime, data=base64.b64decode(res.blob)))
    for key, value in (result.structuredContent or {}).items():
        out.append(VariableMessage(key, value))
    return out


def _text(text: str) -> list[ToolMessage]:
    try:
        data = json.loads(text)
    except ValueError:
        return [TextMessage(text)]
    if isinstance(data, dict):
        return [JsonMessage(data)]
    if isinstance(data, list):
        return [JsonMessage(item) if isinstance(item, dict) else TextMessage(json.dumps(item)) for item in data]
    return [TextMessage(text)]


def _reason(exc: BaseException) -> str:
    """The first leaf of an exception group (anyio wraps the transports' errors)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


def register(r: Registries) -> None:
    r.tool_sources.register(McpToolSource.provider_type, McpToolSource)
