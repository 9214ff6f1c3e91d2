"""Annotations of an app and its annotation-reply setting.

Revision ID: 0006_annotations
Revises: 0005_instances
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_annotations"
down_revision = "0005_instances"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_annotations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_app_annotations_app", "app_annotations", ["app_id", "created_at"])
    op.create_table(
        "app_annotation_settings",
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("score_threshold", sa.Float(), nullable=False),
        sa.Column("embedding_provider_name", sa.String(255), nullable=False),
        sa.Column("embedding_model_name", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("app_annotation_settings")
    op.drop_index("ix_app_annotations_app", table_name="app_annotations")
    op.drop_table("app_annotations")
