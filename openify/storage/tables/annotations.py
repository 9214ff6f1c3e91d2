"""Annotations: curated question/answer pairs of an app, and its annotation-reply setting (Dify's
`message_annotations` and `app_annotation_settings`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class Annotation(Base):
    __tablename__ = "app_annotations"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    # The question's embedding (float32, L2-normalised) by `embedding_model` ("provider/model"), while reply is on.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_app_annotations_app", Annotation.app_id, Annotation.created_at)


class AnnotationSetting(Base):
    """An app's annotation reply: on once its enable job has embedded every annotation."""

    __tablename__ = "app_annotation_settings"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    score_threshold: Mapped[float] = mapped_column(Float, default=0.9)
    embedding_provider_name: Mapped[str] = mapped_column(String(255), default="")
    embedding_model_name: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]
