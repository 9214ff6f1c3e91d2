"""Apps published as MCP servers, and MCP servers used as tool providers.

Revision ID: 0008_app_mcp_servers
Revises: 0007_dify_plugins
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_app_mcp_servers"
down_revision = "0007_dify_plugins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_mcp_servers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("server_code", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


    op.create_table(
        "mcp_tool_providers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("identifier", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mcp_tool_providers")
    op.drop_table("app_mcp_servers")
