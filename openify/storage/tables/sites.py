"""Sites: the shareable web page of an app (Dify's Site), found by its random code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, updated_column


class Site(Base):
    __tablename__ = "sites"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(String(255))
    icon: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    copyright: Mapped[str | None] = mapped_column(String(255), nullable=True)
    privacy_policy: Mapped[str | None] = mapped_column(String(255), nullable=True)
    default_language: Mapped[str] = mapped_column(String(16), default="en-US")
    chat_color_theme: Mapped[str | None] = mapped_column(String(32), nullable=True)
    show_workflow_steps: Mapped[bool] = mapped_column(Boolean, default=True)
    use_icon_as_answer_icon: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]
