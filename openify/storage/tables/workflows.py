"""Workflow runs, their node executions, and the published workflow versions they run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class WorkflowVersion(Base):
    """A published graph of a workflow or chatflow app; its id is Dify's `workflow_id`.

    An imported app's `workflow` block is its published version: one row per distinct graph, found by hash."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("app_id", "graph_hash", name="uq_workflow_versions_app_hash"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))  # Dify: the publish time as text; "draft" is never stored
    graph_hash: Mapped[str] = mapped_column(String(64))
    workflow: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]


class WorkflowRun(Base):
    """One run of a workflow (`type` workflow) or of a chatflow turn (`type` chat)."""

    __tablename__ = "workflow_runs"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))  # workflow | chat
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    triggered_from: Mapped[str] = mapped_column(String(32), default="app-run")
    status: Mapped[str] = mapped_column(String(32))  # running | succeeded | failed | stopped | partial-succeeded
    # Text, not JSON: Dify returns `inputs` as the raw JSON string, and logs search it with ILIKE.
    inputs: Mapped[str] = mapped_column(Text, default="{}")
    outputs: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    elapsed_time: Mapped[float] = mapped_column(Float, default=0.0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    exceptions_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by_role: Mapped[str] = mapped_column(String(16), default="end_user")
    created_by: Mapped[str] = mapped_column(String(36))  # end user id
    created_by_session_id: Mapped[str] = mapped_column(String(255))  # the caller's `user`, for filters
    created_from: Mapped[str] = mapped_column(String(32), default="service-api")
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The server process running it (server_instances.id); a running run whose process is gone is failed.
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class NodeExecution(Base):
    """One execution of one node in a run (iteration items and loop rounds each have their own)."""

    __tablename__ = "workflow_node_executions"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(String(36))
    index: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(255))
    node_type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255), default="")
    predecessor_node_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    iteration_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    loop_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(32))  # running | succeeded | failed | exception | retry
    inputs: Mapped[Any] = mapped_column(JSON, nullable=True)
    process_data: Mapped[Any] = mapped_column(JSON, nullable=True)
    outputs: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    elapsed_time: Mapped[float] = mapped_column(Float, default=0.0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    execution_metadata: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ConversationVariable(Base):
    """A chatflow conversation variable's value in one conversation (Dify's conversation variables API shape)."""

    __tablename__ = "workflow_conversation_variables"
    __table_args__ = (UniqueConstraint("conversation_id", "name", name="uq_workflow_conversation_variables_name"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # the DSL variable's id, per conversation
    app_id: Mapped[str] = mapped_column(String(36))
    conversation_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(255))
    value_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_workflow_runs_app_created", WorkflowRun.app_id, WorkflowRun.created_at)
Index("ix_workflow_runs_status", WorkflowRun.status)
Index("ix_workflow_node_executions_run", NodeExecution.run_id, NodeExecution.index)
