"""An app published as an MCP server (Dify's `app_mcp_servers`): its secret server code and tool description."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class AppMcpServer(Base):
    __tablename__ = "app_mcp_servers"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), unique=True)
    server_code: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # variable -> description
    status: Mapped[str] = mapped_column(String(16), default="active")  # Dify's active / inactive
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class McpToolProvider(Base):
    """An MCP server whose tools Openify calls (Dify's `tool_mcp_providers`), reached by `server_identifier`."""

    __tablename__ = "mcp_tool_providers"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    identifier: Mapped[str] = mapped_column(String(64), unique=True)  # Dify's server_identifier
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)  # an http(s) URL, or "" for a stdio server
    command: Mapped[str] = mapped_column(Text, default="")  # a stdio server's command line
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timeout_s: Mapped[float] = mapped_column(default=30.0)
    tools: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the cached `tools/list`
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]
