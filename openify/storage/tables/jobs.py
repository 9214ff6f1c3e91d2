"""Background jobs: durable rows claimed by workers under a lease (see openify/jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_jobs_status_created", Job.status, Job.created_at)
