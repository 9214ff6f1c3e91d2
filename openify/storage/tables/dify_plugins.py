"""Installed Dify plugins, their provider credentials and their key-value storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class DifyPlugin(Base):
    """One plugin (`author/name`): its install's progress, then where it lives and what it declares."""

    __tablename__ = "dify_plugins"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    plugin_key: Mapped[str] = mapped_column(String(255), unique=True)  # author/name
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(Text)  # what `plugin install` was given
    status: Mapped[str] = mapped_column(String(16), default="installing")  # installing | installed | failed
    progress: Mapped[str] = mapped_column(String(255), default="queued")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    root: Mapped[str | None] = mapped_column(Text, nullable=True)  # the install folder
    declarations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class DifyPluginCredential(Base):
    """A tool provider's credentials (`author/name/provider`), encrypted; never shown again once stored."""

    __tablename__ = "dify_plugin_credentials"

    provider: Mapped[str] = mapped_column(String(255), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token of the credentials' JSON
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class DifyPluginStorage(Base):
    """One key of a plugin's key-value storage (the SDK's `session.storage`)."""

    __tablename__ = "dify_plugin_storage"

    plugin_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
