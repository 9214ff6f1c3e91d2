"""Wire shapes of conversations, messages, feedback and conversation variables."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ConfigDict, Field

from openify.api.schemas.bodies import JsonBody
from openify.api.schemas.chat import UserId
from openify.api.timefmt import iso, unix
from openify.storage.tables import Conversation, Message, MessageFeedback


class RenameBody(JsonBody):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    auto_generate: bool = False
    user: UserId | None = None


class DeleteBody(JsonBody):
    model_config = ConfigDict(extra="ignore")

    user: UserId | None = None


class FeedbackBody(JsonBody):
    model_config = ConfigDict(extra="ignore")

    rating: Any = None
    content: str | None = None
    user: UserId


class VariableBody(JsonBody):
    model_config = ConfigDict(extra="ignore")

    value: Any = Field(...)
    user: UserId | None = None


def conversation(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "inputs": c.inputs,
        "status": c.status,
        "introduction": c.introduction,
        "created_at": unix(c.created_at),
        "updated_at": unix(c.updated_at),
    }


def message(m: Message, rating: str | None, file_url: Callable[[Mapping[str, Any]], str | None]) -> dict[str, Any]:
    usage = m.usage or {}
    resources = [
        {**r, "id": r.get("id") or r.get("segment_id"), "message_id": m.id, "created_at": unix(m.created_at)}
        for r in m.retriever_resources or []
    ]
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "parent_message_id": m.parent_message_id,
        "inputs": m.inputs,
        "query": m.query,
        "answer": m.answer,
        "feedback": {"rating": rating} if rating else None,
        "retriever_resources": resources,
        "agent_thoughts": list(m.agent_thoughts or []),
        "message_files": [_message_file(f, file_url(f)) for f in m.message_files or []],
        "status": m.status if m.status in ("error", "paused") else "normal",  # running and stopped read as normal
        "error": m.error,
        "created_at": unix(m.created_at),
        "extra_contents": [],
        "message_tokens": m.message_tokens,
        "answer_tokens": m.answer_tokens,
        "total_tokens": m.message_tokens + m.answer_tokens,
        "provider_response_latency": m.provider_response_latency,
        "total_price": str(usage.get("total_price", m.total_price)),
        "currency": m.currency,
    }


def _message_file(f: dict[str, Any], url: str | None) -> dict[str, Any]:
    keys = ("id", "filename", "type", "url", "mime_type", "size", "transfer_method", "belongs_to", "upload_file_id")
    return {k: f.get(k) for k in keys} | {"url": url}


def feedback(f: MessageFeedback) -> dict[str, Any]:
    # Dify answers ISO-8601 here, unlike the Unix seconds everywhere else.
    return {
        "id": f.id,
        "app_id": f.app_id,
        "conversation_id": f.conversation_id,
        "message_id": f.message_id,
        "rating": f.rating,
        "content": f.content,
        "from_source": f.from_source,
        "from_end_user_id": f.from_end_user_id,
        "from_account_id": None,
        "created_at": iso(f.created_at),
        "updated_at": iso(f.updated_at),
    }


def variable(row: dict[str, Any]) -> dict[str, Any]:
    value = row.get("value")
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return {
        "id": row["id"],
        "name": row["name"],
        "value_type": row["value_type"],
        "value": shown,
        "description": row.get("description") or "",
        "created_at": unix(row["created_at"]),
        "updated_at": unix(row["updated_at"]),
    }
