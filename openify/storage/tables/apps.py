"""Apps (defined by Dify DSL), their API keys, and the end users who call them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    mode: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    icon_type: Mapped[str] = mapped_column(String(16), default="emoji")
    icon: Mapped[str | None] = mapped_column(String(255), nullable=True)
    icon_background: Mapped[str | None] = mapped_column(String(32), nullable=True)
    use_icon_as_answer_icon: Mapped[bool] = mapped_column(Boolean, default=False)
    dsl_version: Mapped[str] = mapped_column(String(16))
    # chat / completion / agent-chat: Dify's `model_config` block, normalised.
    model_config_: Mapped[dict[str, Any] | None] = mapped_column("model_config", JSON, nullable=True)
    # workflow / advanced-chat: Dify's `workflow` block (graph, features, variables).
    workflow: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dependencies: Mapped[list[Any]] = mapped_column(JSON, default=list)
    enable_api: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="normal")
    max_active_requests: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class ApiKey(Base):
    """A Service API key. Only a SHA-256 of the token is stored: keys carry >= 128 random bits, so a
    fast hash cannot be brute-forced, and lookups stay O(1) on every request."""

    __tablename__ = "api_keys"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    type: Mapped[str] = mapped_column(String(16))  # app | dataset
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), nullable=True, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hint: Mapped[str] = mapped_column(String(32))  # "app-abcd…wxyz", safe to show
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class EndUser(Base):
    """One `user` string of one app, created on first sight (Dify's EndUser, type service-api)."""

    __tablename__ = "end_users"
    __table_args__ = (UniqueConstraint("app_id", "session_id", name="uq_end_users_app_session"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32), default="service-api")
    session_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_end_users_app", EndUser.app_id)
