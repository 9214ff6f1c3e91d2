"""Conversations and their messages, feedback, and files uploaded for chats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class Conversation(Base):
    """A chat thread of one end user of one app (completion messages get one too, never listed)."""

    __tablename__ = "conversations"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255), default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    introduction: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="normal")
    dialogue_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_conversations_user", Conversation.app_id, Conversation.end_user_id, Conversation.updated_at)


class Message(Base):
    """One turn: the query, the answer as far as it got, and what it cost."""

    __tablename__ = "messages"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(String(36))
    parent_message_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    mode: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    query: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    message_tokens: Mapped[int] = mapped_column(Integer, default=0)
    answer_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_price: Mapped[str] = mapped_column(String(32), default="0")
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provider_response_latency: Mapped[float] = mapped_column(Float, default=0.0)
    # running -> normal | error | stopped; Dify shows `stopped` as normal with a partial answer
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    retriever_resources: Mapped[list[Any]] = mapped_column(JSON, default=list)
    agent_thoughts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    message_files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    suggested_questions: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    workflow_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]
    # The server process generating it (server_instances.id); a running message whose process is gone ends.
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


Index("ix_messages_conversation", Message.conversation_id, Message.created_at)


class MessageFeedback(Base):
    """A like or dislike of one message; a new rating replaces the old one."""

    __tablename__ = "message_feedbacks"
    __table_args__ = (UniqueConstraint("message_id", "from_source", name="uq_message_feedbacks_message"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(36))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    rating: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_source: Mapped[str] = mapped_column(String(16), default="user")
    from_end_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class UploadFile(Base):
    """A file an end user uploaded through POST /files/upload; bytes live in the blob store."""

    __tablename__ = "upload_files"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    end_user_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    extension: Mapped[str] = mapped_column(String(32))
    mime_type: Mapped[str] = mapped_column(String(255))
    blob_key: Mapped[str] = mapped_column(String(255))
    used: Mapped[bool] = mapped_column(default=False)  # attached to a message: preview allowed
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
