"""Sites: the web page of an app, with Dify's site settings.

Revision ID: 0009_sites
Revises: 0008_app_mcp_servers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_sites"
down_revision = "0008_app_mcp_servers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("icon", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("copyright", sa.String(255), nullable=True),
        sa.Column("privacy_policy", sa.String(255), nullable=True),
        sa.Column("default_language", sa.String(16), nullable=False),
        sa.Column("chat_color_theme", sa.String(32), nullable=True),
        sa.Column("show_workflow_steps", sa.Boolean(), nullable=False),
        sa.Column("use_icon_as_answer_icon", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sites")
