"""Request bodies of /chat-messages and /completion-messages, and the wire shapes of their events and bodies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from openify.api.schemas.bodies import JsonBody
from openify.services.chat.events import (
    AgentMessageDelta,
    AgentThought,
    ChatEvent,
    GenerationError,
    MessageDelta,
    MessageEnd,
    MessageFile,
    MessageReplace,
)
from openify.services.chat.generation import Generation
from openify.services.chat.messages import usage_dict


def _user(value: Any) -> Any:
    # Dify str()-s a non-string `user`; only a missing or empty one is refused.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


UserId = Annotated[str, BeforeValidator(_user), Field(min_length=1)]


def _uuid_or_empty(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"{value} is not a valid uuid") from None
    return value


class FileRef(JsonBody):
    model_config = ConfigDict(extra="ignore")

    type: Literal["image", "document", "audio", "video", "custom"]
    transfer_method: Literal["remote_url", "local_file"]
    url: str | None = None
    upload_file_id: str | None = None

    @field_validator("upload_file_id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _uuid_or_empty(value)


class _GenerationBody(JsonBody):
    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any]
    user: UserId
    response_mode: Literal["blocking", "streaming"] | None = None
    files: list[FileRef] | None = None


class ChatMessageRequest(_GenerationBody):
    query: str
    conversation_id: str | None = None
    auto_generate_name: bool = True
    workflow_id: str | None = None

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        value = value.replace("\x00", "")
        if not value.strip():
            raise ValueError("query is required")
        return value

    @field_validator("conversation_id")
    @classmethod
    def _conversation(cls, value: str | None) -> str | None:
        return _uuid_or_empty(value)


class CompletionMessageRequest(_GenerationBody):
    query: str = ""  # legacy: completion apps take their text from inputs

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return value.replace("\x00", "")


class UserBody(JsonBody):
    """A body with only `user` (stop)."""

    model_config = ConfigDict(extra="ignore")

    user: UserId


# --- wire shapes --------------------------------------------------------------------------------------------
def _price(value: Decimal) -> str:
    return format(value.normalize() if value == 0 else value, "f")


def _number(value: Decimal) -> int | float:
    return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]  # int exponent here


def usage_payload(usage: Any, *, sse: bool) -> dict[str, Any]:
    """Dify's usage: Decimal prices are strings in SSE and numbers in blocking bodies."""
    out = usage_dict(usage)
    for k, v in out.items():
        if isinstance(v, Decimal):
            out[k] = _price(v) if sse else _number(v)
    return out


def metadata(end: MessageEnd, *, sse: bool) -> dict[str, Any]:
    return {
        "annotation_reply": dict(end.annotation_reply) if end.annotation_reply is not None else None,
        "retriever_resources": list(end.retriever_resources),
        "usage": usage_payload(end.usage, sse=sse),
    }


def _head(gen: Generation, event: str) -> dict[str, Any]:
    if gen.mode == "completion":
        return {"event": event, "message_id": gen.message_id, "created_at": gen.created_at}
    return {
        "event": event,
        "conversation_id": gen.conversation_id,
        "message_id": gen.message_id,
        "created_at": gen.created_at,
    }


def event_payload(gen: Generation, event: ChatEvent) -> dict[str, Any]:
    """One typed event as Dify's "full" stream converters write it."""
    match event:
        case MessageDelta(answer):
            return {
                **_head(gen, "message"),
                "task_id": gen.task_id,
                "id": gen.message_id,
                "answer": answer,
                "from_variable_selector": None,
            }
        case AgentMessageDelta(answer):
            return {**_head(gen, "agent_message"), "task_id": gen.task_id, "id": gen.message_id, "answer": answer}
        case AgentThought():
            return {
                **_head(gen, "agent_thought"),
                "task_id": gen.task_id,
                "id": event.id,
                "position": event.position,
                "thought": event.thought,
                "observation": event.observation,
                "tool": event.tool,
                "tool_labels": dict(event.tool_labels),
                "tool_input": event.tool_input,
                "message_files": list(event.message_files) or None,
            }
        case MessageFile():
            return {
                **_head(gen, "message_file"),
                "task_id": gen.task_id,
                "id": event.id,
                "type": event.type,
                "belongs_to": event.belongs_to,
                "url": event.url,
            }
        case MessageReplace(answer):
            return {**_head(gen, "message_replace"), "task_id": gen.task_id, "answer": answer, "reason": ""}
        case MessageEnd():
            return {
                **_head(gen, "message_end"),
                "task_id": gen.task_id,
                "id": gen.message_id,
                "metadata": metadata(event, sse=True),
                "files": _files(event.files),
            }
        case GenerationError(error):
            # Dify's error events carry the head keys and the envelope, but no task_id.
            body: dict[str, Any] = {"code": error.code, "message": error.detail, "status": error.status}
            return {**_head(gen, "error"), **body}
    raise TypeError(f"unknown chat event {event!r}")  # pragma: no cover - the union above is exhaustive


def _files(files: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    return [dict(f) for f in files] if files else None


async def stream_payloads(gen: Generation) -> AsyncIterator[dict[str, Any]]:
    async for event in gen.follow():
        yield event_payload(gen, event)


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A body as compact UTF-8 JSON; faster than FastAPI's jsonable_encoder on the hot path."""
    return orjson.dumps(body)


def blocking_body(gen: Generation, events: Sequence[ChatEvent], app_mode: str) -> dict[str, Any]:
    """The blocking answer, folded from the same events the stream sends; an error is raised for the envelope."""
    answer: list[str] = []
    end: MessageEnd | None = None
    for event in events:
        match event:
            case MessageDelta(text) | AgentMessageDelta(text):
                answer.append(text)
            case MessageReplace(text):
                answer = [text]
            case MessageEnd():
                end = event
            case GenerationError(error):
                raise error
    assert end is not None  # noqa: S101 - a generation ends with message_end or error
    body: dict[str, Any] = {
        "event": "message",
        "task_id": gen.task_id,
        "id": gen.message_id,
        "message_id": gen.message_id,
    }
    if app_mode != "completion":
        body["conversation_id"] = gen.conversation_id
    body.update(mode=app_mode, answer="".join(answer), metadata=metadata(end, sse=False), created_at=gen.created_at)
    return body
