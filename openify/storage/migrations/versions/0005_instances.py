"""Server instances: processes sharing one database, and the owner of each run and message they start.

Revision ID: 0005_instances
Revises: 0002_chat, 0004_workflows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_instances"
down_revision = ("0002_chat", "0004_workflows")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_instances",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    # Rows from before have no owner: a server starting takes them for interrupted, as it did before.
    with op.batch_alter_table("workflow_runs") as t:
        t.add_column(sa.Column("instance_id", sa.String(36), nullable=True))
    with op.batch_alter_table("messages") as t:
        t.add_column(sa.Column("instance_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as t:
        t.drop_column("instance_id")
    with op.batch_alter_table("workflow_runs") as t:
        t.drop_column("instance_id")
    op.drop_table("server_instances")
