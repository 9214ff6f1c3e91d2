"""Foundation: apps, API keys, end users.

Revision ID: 0001_foundation
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("icon_type", sa.String(16), nullable=False),
        sa.Column("icon", sa.String(255), nullable=True),
        sa.Column("icon_background", sa.String(32), nullable=True),
        sa.Column("use_icon_as_answer_icon", sa.Boolean(), nullable=False),
        sa.Column("dsl_version", sa.String(16), nullable=False),
        sa.Column("model_config", sa.JSON(), nullable=True),
        sa.Column("workflow", sa.JSON(), nullable=True),
        sa.Column("dependencies", sa.JSON(), nullable=False),
        sa.Column("enable_api", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("max_active_requests", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hint", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_app_id", "api_keys", ["app_id"])
    op.create_table(
        "end_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("is_anonymous", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("app_id", "session_id", name="uq_end_users_app_session"),
    )
    op.create_index("ix_end_users_app", "end_users", ["app_id"])


def downgrade() -> None:
    op.drop_table("end_users")
    op.drop_table("api_keys")
    op.drop_table("apps")
