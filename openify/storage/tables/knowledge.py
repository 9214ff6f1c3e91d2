"""Knowledge bases: datasets, their process rules, documents, segments, child chunks, tags and metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openify.storage.tables.base import Base, created_column, id_column, updated_column


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = id_column()  # type: ignore[assignment]  # helper returns a mapped_column
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str] = mapped_column(String(16), default="vendor")
    permission: Mapped[str] = mapped_column(String(32), default="only_me")
    indexing_technique: Mapped[str | None] = mapped_column(String(16), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    embedding_model_provider: Mapped[str | None] = mapped_column(String(255), nullable=True)
    retrieval_model: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    doc_form: Mapped[str | None] = mapped_column(String(32), nullable=True)
    built_in_field_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    summary_index_setting: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    enable_api: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class DatasetProcessRule(Base):
    __tablename__ = "dataset_process_rules"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    batch: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    data_source_type: Mapped[str] = mapped_column(String(32))  # upload_file | text
    data_source_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    blob_key: Mapped[str] = mapped_column(String(255))  # the original file, or the text as UTF-8
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    file_extension: Mapped[str] = mapped_column(String(32), default="txt")
    mime_type: Mapped[str] = mapped_column(String(255), default="text/plain")
    dataset_process_rule_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    doc_form: Mapped[str] = mapped_column(String(32), default="text_model")
    doc_language: Mapped[str] = mapped_column(String(64), default="English")
    indexing_status: Mapped[str] = mapped_column(String(16), default="waiting")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    # Values of the dataset's custom metadata fields, by field id (a rename touches no document).
    doc_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    processing_started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    parsing_completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    cleaning_completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    splitting_completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_documents_dataset_position", Document.dataset_id, Document.position)


class Segment(Base):
    """A chunk. `index_node_id` is its key in the dataset's indexes (its children's, for hierarchical)."""

    __tablename__ = "document_segments"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    dataset_id: Mapped[str] = mapped_column(String(36), index=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    index_node_id: Mapped[str] = mapped_column(String(36), index=True)
    index_node_hash: Mapped[str] = mapped_column(String(64))
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | indexing | completed | error
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    indexing_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


Index("ix_document_segments_document_position", Segment.document_id, Segment.position)


class ChildChunk(Base):
    __tablename__ = "child_chunks"

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    dataset_id: Mapped[str] = mapped_column(String(36), index=True)
    document_id: Mapped[str] = mapped_column(String(36))
    segment_id: Mapped[str] = mapped_column(ForeignKey("document_segments.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    index_node_id: Mapped[str] = mapped_column(String(36), index=True)
    index_node_hash: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16), default="automatic")  # automatic | customized
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]


class DatasetTag(Base):
    __tablename__ = "dataset_tags"
    __table_args__ = (UniqueConstraint("type", "name", name="uq_dataset_tags_type_name"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16), default="knowledge")
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]


class DatasetTagBinding(Base):
    __tablename__ = "dataset_tag_bindings"
    __table_args__ = (UniqueConstraint("tag_id", "target_id", name="uq_dataset_tag_bindings"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    tag_id: Mapped[str] = mapped_column(ForeignKey("dataset_tags.id", ondelete="CASCADE"))
    target_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]


class DatasetMetadataField(Base):
    __tablename__ = "dataset_metadata"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_dataset_metadata_name"),)

    id: Mapped[str] = id_column()  # type: ignore[assignment]
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))  # string | number | time
    created_at: Mapped[datetime] = created_column()  # type: ignore[assignment]
    updated_at: Mapped[datetime] = updated_column()  # type: ignore[assignment]
