"""Apps published as MCP servers: the `app_mcp_servers` rows (Dify's console bodies), the one tool each server
offers (built from the app's input form as Dify's `build_parameter_schema`), and a call of that tool (the app's
own turn, through `OpenAIFace.run`)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openify.errors import InvalidParam, NotFound
from openify.services.app_parameters import form_fields
from openify.services.openai_face import FaceDelta, FaceError, OpenAIFace
from openify.storage.db import Database
from openify.storage.tables import App, AppMcpServer

STATUSES = ("active", "inactive")
_SKIPPED_INPUTS = ("file", "file-list", "external_data_tool")  # Dify leaves these out of the schema
_CHAT_MODES = ("chat", "agent-chat", "advanced-chat")


@dataclass(frozen=True, slots=True)
class McpServerInfo:
    id: str
    app_id: str
    name: str
    server_code: str
    description: str
    parameters: Mapping[str, str]
    status: str
    created_at: Any
    updated_at: Any


@dataclass(frozen=True, slots=True)
class McpTool:
    name: str
    description: str
    input_schema: dict[str, Any]


def new_code() -> str:
    return secrets.token_urlsafe(12)[:16]  # Dify's codes are 16 characters


def input_schema(app: App, parameters: Mapping[str, str]) -> dict[str, Any]:
    """Dify's `build_parameter_schema`: text and paragraph are strings, select a string enum, number a number,
    each described by the server's `parameters`; chat apps add a required `query`."""
    props: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for kind, field in form_fields(app):
        var = field.get("variable")
        if not isinstance(var, str) or kind in _SKIPPED_INPUTS:
            continue
        prop: dict[str, Any] = {"description": str(parameters.get(var, ""))}
        if kind in ("text-input", "paragraph"):
            prop["type"] = "string"
        elif kind == "select":
            prop["type"], prop["enum"] = "string", list(field.get("options") or [])
        elif kind == "number":
            prop["type"] = "number"
        props[var] = prop
        if field.get("required"):
            required.append(var)
    if app.mode not in _CHAT_MODES:
        return {"type": "object", "properties": props, "required": required}
    query = {"type": "string", "description": "User Input/Question content"}
    return {"type": "object", "properties": {"query": query, **props}, "required": ["query", *required]}


class McpServerService:
    def __init__(self, db: Database, face: OpenAIFace) -> None:
        self._db, self._face = db, face

    def _info(self, row: AppMcpServer, app: App) -> McpServerInfo:
        return McpServerInfo(
            row.id, row.app_id, app.name, row.server_code, row.description, dict(row.parameters or {}),
            row.status, row.created_at, row.updated_at,
        )  # fmt: skip

    def get(self, app: App) -> McpServerInfo | None:
        with self._db.session() as s:
            row = s.scalar(select(AppMcpServer).where(AppMcpServer.app_id == app.id))
            return self._info(row, app) if row is not None else None

    def create(self, app: App, description: str | None, parameters: Mapping[str, str]) -> McpServerInfo:
        with self._db.session() as s:
            if s.scalar(select(AppMcpServer.id).where(AppMcpServer.app_id == app.id)) is not None:
                raise InvalidParam("The app's MCP server already exists; update it with PUT.")
            row = AppMcpServer(
                app_id=app.id,
                server_code=new_code(),
                description=description if description is not None else (app.description or ""),
                parameters=dict(parameters),
                status="active",
            )
            s.add(row)
            s.commit()
            return self._info(row, app)

    def update(
        self,
        app: App,
        description: str | None,
        parameters: Mapping[str, str] | None,
        status: str | None,
        refresh: bool = False,
    ) -> McpServerInfo:
        if status is not None and status not in STATUSES:
            raise InvalidParam(f"status must be one of {', '.join(STATUSES)}", params="status")
        with self._db.session() as s:
            row = s.scalar(select(AppMcpServer).where(AppMcpServer.app_id == app.id))
            if row is None:
                raise NotFound("The app has no MCP server.")
            if description is not None:
                row.description = description
            if parameters is not None:
                row.parameters = dict(parameters)
            if status is not None:
                row.status = status
            if refresh:
                row.server_code = new_code()
            s.commit()
            return self._info(row, app)

    def by_code(self, code: str) -> tuple[str, McpServerInfo] | None:
        """(app id, server) of an active server code."""
        with self._db.session() as s:
            row = s.scalar(select(AppMcpServer).where(AppMcpServer.server_code == code))
            if row is None or row.status != "active":
                return None
            return row.app_id, McpServerInfo(
                row.id, row.app_id, "", row.server_code, row.description, dict(row.parameters or {}),
                row.status, row.created_at, row.updated_at,
            )  # fmt: skip

    def tool(self, app: App, server: McpServerInfo) -> McpTool:
        return McpTool(app.name, server.description, input_schema(app, server.parameters))

    async def call(self, app: App, arguments: Mapping[str, Any], user: str) -> str:
        """Run the app once with the tool's arguments; the answer as text (a workflow's outputs as JSON, as
        Dify). Agent apps answer with their final answer, not their thoughts (where Dify differs: dify#22403)."""
        args = dict(arguments)
        query = str(args.pop("query", "")) if app.mode in _CHAT_MODES else ""
        if app.mode in _CHAT_MODES and not query.strip():
            raise InvalidParam("query is required", params="query")
        turn = await self._face.run(app, user, query, args)
        parts: list[str] = []
        async for ev in turn.events:
            if isinstance(ev, FaceDelta):
                parts.append(ev.text)
            elif isinstance(ev, FaceError):
                raise ev.error
        if app.mode == "workflow":
            return json.dumps(turn.outputs, ensure_ascii=False, default=str)
        return "".join(turn.answer) if turn.answer else "".join(parts)
