"""Chat: conversations, messages, feedback, uploaded files.

Revision ID: 0002_chat
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_chat"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(36), primary_key=True)


def _app() -> sa.Column[str]:
    return sa.Column("app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False)


def _times() -> list[sa.Column[sa.DateTime]]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "conversations",
        _id(),
        _app(),
        sa.Column("end_user_id", sa.String(36), sa.ForeignKey("end_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("introduction", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dialogue_count", sa.Integer(), nullable=False),
        *_times(),
    )
    op.create_index("ix_conversations_user", "conversations", ["app_id", "end_user_id", "updated_at"])
    op.create_table(
        "messages",
        _id(),
        _app(),
        sa.Column(
            "conversation_id", sa.String(36), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("end_user_id", sa.String(36), nullable=False),
        sa.Column("parent_message_id", sa.String(36), nullable=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("message_tokens", sa.Integer(), nullable=False),
        sa.Column("answer_tokens", sa.Integer(), nullable=False),
        sa.Column("total_price", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("provider_response_latency", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retriever_resources", sa.JSON(), nullable=False),
        sa.Column("agent_thoughts", sa.JSON(), nullable=False),
        sa.Column("message_files", sa.JSON(), nullable=False),
        sa.Column("suggested_questions", sa.JSON(), nullable=True),
        sa.Column("workflow_run_id", sa.String(36), nullable=True),
        *_times(),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "created_at"])
    op.create_table(
        "message_feedbacks",
        _id(),
        _app(),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rating", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("from_source", sa.String(16), nullable=False),
        sa.Column("from_end_user_id", sa.String(36), nullable=True),
        *_times(),
        sa.UniqueConstraint("message_id", "from_source", name="uq_message_feedbacks_message"),
    )
    op.create_index("ix_message_feedbacks_app_id", "message_feedbacks", ["app_id"])
    op.create_table(
        "upload_files",
        _id(),
        _app(),
        sa.Column("end_user_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_upload_files_app_id", "upload_files", ["app_id"])


def downgrade() -> None:
    for table in ("upload_files", "message_feedbacks", "messages", "conversations"):
        op.drop_table(table)
