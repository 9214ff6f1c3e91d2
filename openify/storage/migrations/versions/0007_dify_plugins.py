"""Installed Dify plugins, their provider credentials and key-value storage.

Revision ID: 0007_dify_plugins
Revises: 0006_annotations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_dify_plugins"
down_revision = "0006_annotations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dify_plugins",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("plugin_key", sa.String(255), nullable=False, unique=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.String(255), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("root", sa.Text(), nullable=True),
        sa.Column("declarations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "dify_plugin_credentials",
        sa.Column("provider", sa.String(255), primary_key=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "dify_plugin_storage",
        sa.Column("plugin_key", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dify_plugin_storage")
    op.drop_table("dify_plugin_credentials")
    op.drop_table("dify_plugins")
