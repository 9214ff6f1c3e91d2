"""Every app as an MCP server: Dify's console paths to publish one (`/console/api/apps/{app_id}/server`) and the
server itself at `/mcp/server/{server_code}/mcp`.

The endpoint is the official `mcp` SDK's low-level `Server` behind its `StreamableHTTPSessionManager`: the full
streamable-HTTP transport (POST answered as SSE, GET for server messages, sessions), where Dify answers POST with
JSON only (dify#22188, #26314). Each request names its server by its code; the code (and, optionally, an app key as
the bearer) is checked before the SDK sees the request."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as mt
import orjson
from fastapi import APIRouter, Depends
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from openify import __version__
from openify.api.deps import ServicesDep
from openify.api.routes.console import require_admin
from openify.api.schemas.bodies import JsonBody
from openify.api.timefmt import unix
from openify.errors import NotFound, OpenifyError
from openify.services.container import Services
from openify.services.mcp_server import McpServerInfo
from openify.storage.tables import App

console = APIRouter(prefix="/console/api", tags=["console"], dependencies=[Depends(require_admin)])
_SCOPE_KEY = "openify.mcp_server"
_CODE = re.compile(r"/mcp/server/([A-Za-z0-9_-]{1,64})/mcp/?$")


class ServerCreate(JsonBody):  # JsonBody: NUL characters stripped
    model_config = ConfigDict(extra="ignore")

    description: str | None = Field(default=None, max_length=10_000)
    parameters: dict[str, str] = Field(default_factory=dict)


class ServerUpdate(JsonBody):  # JsonBody: NUL characters stripped
    model_config = ConfigDict(extra="ignore")

    id: str | None = None  # Dify's body names the server; the path's app decides which one
    description: str | None = Field(default=None, max_length=10_000)
    parameters: dict[str, str] | None = None
    status: str | None = None


def _body(info: McpServerInfo) -> dict[str, Any]:
    """Dify's `app_server_fields`."""
    return {
        "id": info.id,
        "name": info.name,
        "server_code": info.server_code,
        "description": info.description,
        "status": info.status,
        "parameters": dict(info.parameters),
        "created_at": unix(info.created_at),
        "updated_at": unix(info.updated_at),
    }


async def _app(services: Services, app_id: str) -> App:
    return await run_in_threadpool(services.apps.get, app_id)


@console.get("/apps/{app_id}/server")
async def get_server(app_id: str, services: ServicesDep) -> dict[str, Any]:
    app = await _app(services, app_id)
    info = await run_in_threadpool(services.mcp_servers.get, app)
    if info is None:
        raise NotFound("The app has no MCP server.")
    return _body(info)


@console.post("/apps/{app_id}/server", status_code=201)
async def create_server(app_id: str, body: ServerCreate, services: ServicesDep) -> dict[str, Any]:
    app = await _app(services, app_id)
    return _body(await run_in_threadpool(services.mcp_servers.create, app, body.description, body.parameters))


@console.put("/apps/{app_id}/server")
async def update_server(app_id: str, body: ServerUpdate, services: ServicesDep) -> dict[str, Any]:
    app = await _app(services, app_id)
    update = services.mcp_servers.update
    return _body(await run_in_threadpool(update, app, body.description, body.parameters, body.status))


# Dify serves GET; POST too, for clients that will not change state with a GET. One schema entry (one operation id).
@console.api_route("/apps/{app_id}/server/refresh", methods=["GET", "POST"], include_in_schema=False)
async def refresh_server(app_id: str, services: ServicesDep) -> dict[str, Any]:
    """A new server code; the old one stops working at once."""
    app = await _app(services, app_id)
    return _body(await run_in_threadpool(services.mcp_servers.update, app, None, None, None, True))


class McpProviderCreate(JsonBody):  # JsonBody: NUL characters stripped
    """Dify's body for adding an MCP tool provider."""

    model_config = ConfigDict(extra="ignore")

    server_url: str = Field(min_length=1, max_length=2048)
    server_identifier: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    name: str | None = Field(default=None, max_length=255)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = 30.0


class McpProviderRef(JsonBody):  # JsonBody: NUL characters stripped
    model_config = ConfigDict(extra="ignore")

    server_identifier: str = Field(min_length=1, max_length=64)


@console.post("/workspaces/current/tool-provider/mcp", status_code=201)
async def add_mcp_provider(body: McpProviderCreate, services: ServicesDep) -> dict[str, Any]:
    mcp = services.mcp_tools
    return await mcp.add(body.server_identifier, body.server_url, body.name, body.headers, body.timeout)


@console.get("/workspaces/current/tools/mcp")
async def list_mcp_providers(services: ServicesDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(services.mcp_tools.list)


@console.get("/workspaces/current/tool-provider/mcp/update/{server_identifier}")
async def refresh_mcp_provider(server_identifier: str, services: ServicesDep) -> dict[str, Any]:
    """A new `tools/list` from the server."""
    return await services.mcp_tools.refresh(server_identifier)


@console.delete("/workspaces/current/tool-provider/mcp")
async def remove_mcp_provider(body: McpProviderRef, services: ServicesDep) -> dict[str, str]:
    await run_in_threadpool(services.mcp_tools.remove, body.server_identifier)
    return {"result": "success"}


class McpEndpoint:
    """The ASGI app mounted at `/mcp/server`: checks the code, then hands the request to the SDK."""

    def __init__(self, services: Services) -> None:
        self._services = services
        server: Server[Any, Request] = Server("Openify", version=__version__)
        self._server = server

        @server.list_tools()  # type: ignore[no-untyped-call, untyped-decorator]
        async def list_tools() -> list[mt.Tool]:
            app, info = self._current()
            tool = services.mcp_servers.tool(app, info)
            return [mt.Tool(name=tool.name, description=tool.description, inputSchema=tool.input_schema)]

        @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
        async def call_tool(name: str, arguments: dict[str, Any]) -> list[mt.TextContent]:
            app, info = self._current()
            if name != app.name:
                raise ValueError(f"unknown tool {name!r}")
            try:
                answer = await services.mcp_servers.call(app, arguments or {}, f"mcp-{info.id}")
            except OpenifyError as exc:
                raise ValueError(exc.detail) from None
            return [mt.TextContent(type="text", text=answer)]

        self.manager = StreamableHTTPSessionManager(app=server, json_response=False)

    def _current(self) -> tuple[App, McpServerInfo]:
        request = self._server.request_context.request
        assert request is not None  # noqa: S101 - the HTTP transport always passes its request
        found: tuple[App, McpServerInfo] = request.scope[_SCOPE_KEY]
        return found

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's session manager, run in a task of its own: its task group must be entered and left by one
        task, and a lifespan's start and end need not run in the same task (test fixtures do not)."""
        ready, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with self.manager.run():
                ready.set()
                await stop.wait()

        task = asyncio.create_task(hold(), name="openify-mcp-sessions")
        await ready.wait()
        try:
            yield
        finally:
            stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        match = _CODE.search(scope["path"])
        found = await run_in_threadpool(self._services.mcp_servers.by_code, match.group(1)) if match else None
        if found is None:
            return await _reject(send, 404, "Server Not Found")
        app_id, info = found
        try:
            app = await run_in_threadpool(self._services.apps.get, app_id)
        except NotFound:
            return await _reject(send, 404, "Server Not Found")
        if app.status != "normal":
            return await _reject(send, 403, "The app's status is abnormal.")
        token = _bearer(scope)
        if token is not None:
            principal = await run_in_threadpool(self._services.keys.authenticate, token, "app")
            if principal is None or principal.app_id != app.id:
                return await _reject(send, 401, "Access token is invalid")
        scope[_SCOPE_KEY] = (app, info)
        await self.manager.handle_request(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    return None


async def _reject(send: Send, status: int, message: str) -> None:
    """A JSON-RPC error (Dify answers its MCP errors so), with the HTTP status."""
    body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
