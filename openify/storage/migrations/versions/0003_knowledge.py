"""Knowledge bases (datasets, documents, segments, child chunks, tags, metadata) and background jobs.

Revision ID: 0003_knowledge
Revises: 0001_foundation
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_knowledge"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.Column("indexing_technique", sa.String(16), nullable=True),
        sa.Column("embedding_model", sa.String(255), nullable=True),
        sa.Column("embedding_model_provider", sa.String(255), nullable=True),
        sa.Column("retrieval_model", sa.JSON(), nullable=True),
        sa.Column("doc_form", sa.String(32), nullable=True),
        sa.Column("built_in_field_enabled", sa.Boolean(), nullable=False),
        sa.Column("summary_index_setting", sa.JSON(), nullable=True),
        sa.Column("enable_api", sa.Boolean(), nullable=False),
        *_stamps(),
    )
    op.create_table(
        "dataset_process_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_dataset_process_rules_dataset_id", "dataset_process_rules", ["dataset_id"])
    op.create_table(
        "documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("batch", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("data_source_type", sa.String(32), nullable=False),
        sa.Column("data_source_info", sa.JSON(), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("file_size", sa.Integer(), nullable=False),
        sa.Column("file_extension", sa.String(32), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("dataset_process_rule_id", sa.String(36), nullable=True),
        sa.Column("doc_form", sa.String(32), nullable=False),
        sa.Column("doc_language", sa.String(64), nullable=False),
        sa.Column("indexing_status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("doc_metadata", sa.JSON(), nullable=False),
        sa.Column("processing_started_at", sa.DateTime(), nullable=True),
        sa.Column("parsing_completed_at", sa.DateTime(), nullable=True),
        sa.Column("cleaning_completed_at", sa.DateTime(), nullable=True),
        sa.Column("splitting_completed_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("paused_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_documents_batch", "documents", ["batch"])
    op.create_index("ix_documents_dataset_position", "documents", ["dataset_id", "position"])
    op.create_table(
        "document_segments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("index_node_id", sa.String(36), nullable=False),
        sa.Column("index_node_hash", sa.String(64), nullable=False),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("indexing_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_document_segments_dataset_id", "document_segments", ["dataset_id"])
    op.create_index("ix_document_segments_index_node_id", "document_segments", ["index_node_id"])
    op.create_index("ix_document_segments_document_position", "document_segments", ["document_id", "position"])
    op.create_table(
        "child_chunks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column(
            "segment_id", sa.String(36), sa.ForeignKey("document_segments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("index_node_id", sa.String(36), nullable=False),
        sa.Column("index_node_hash", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        *_stamps(),
    )
    op.create_index("ix_child_chunks_dataset_id", "child_chunks", ["dataset_id"])
    op.create_index("ix_child_chunks_segment_id", "child_chunks", ["segment_id"])
    op.create_index("ix_child_chunks_index_node_id", "child_chunks", ["index_node_id"])
    op.create_table(
        "dataset_tags",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("type", "name", name="uq_dataset_tags_type_name"),
    )
    op.create_table(
        "dataset_tag_bindings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tag_id", sa.String(36), sa.ForeignKey("dataset_tags.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("tag_id", "target_id", name="uq_dataset_tag_bindings"),
    )
    op.create_index("ix_dataset_tag_bindings_target_id", "dataset_tag_bindings", ["target_id"])
    op.create_table(
        "dataset_metadata",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        *_stamps(),
        sa.UniqueConstraint("dataset_id", "name", name="uq_dataset_metadata_name"),
    )
    op.create_index("ix_dataset_metadata_dataset_id", "dataset_metadata", ["dataset_id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])


def downgrade() -> None:
    for table in (
        "jobs",
        "dataset_metadata",
        "dataset_tag_bindings",
        "dataset_tags",
        "child_chunks",
        "document_segments",
        "documents",
        "dataset_process_rules",
        "datasets",
    ):
        op.drop_table(table)
