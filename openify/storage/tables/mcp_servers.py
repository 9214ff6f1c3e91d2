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
