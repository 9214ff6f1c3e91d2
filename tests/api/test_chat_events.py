"""Every chat event as Dify's "full" stream converters write it (keys and order), pinned once."""

from __future__ import annotations

from decimal import Decimal

from openify.api.schemas.chat import blocking_body, event_payload
from openify.errors import ProviderQuotaExceeded
from openify.providers.base import Usage
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

HEAD = ["event", "conversation_id", "message_id", "created_at"]


def gen(mode: str = "chat") -> Generation:
    return Generation(
        task_id="t", message_id="m", conversation_id="c", app_id="a", end_user_id="u", mode=mode, created_at=1700000000
    )


def test_chat_event_keys() -> None:
    g = gen()
    usage = Usage(prompt_tokens=3, completion_tokens=2, prompt_unit_price=Decimal("0.15"), latency=0.5)
    cases: list[tuple[object, list[str]]] = [
        (MessageDelta("x"), [*HEAD, "task_id", "id", "answer", "from_variable_selector"]),
        (AgentMessageDelta("x"), [*HEAD, "task_id", "id", "answer"]),
        (
            AgentThought("th", 1, "t", "o", "tool", {}, "{}", ()),
            [
                *HEAD,
                "task_id",
                "id",
                "position",
                "thought",
                "observation",
                "tool",
                "tool_labels",
                "tool_input",
                "message_files",
            ],
        ),
        (MessageFile("f", "image", "assistant", "https://x"), [*HEAD, "task_id", "id", "type", "belongs_to", "url"]),
        (MessageReplace("all"), [*HEAD, "task_id", "answer", "reason"]),
        (MessageEnd(usage, [], None), [*HEAD, "task_id", "id", "metadata", "files"]),
        (GenerationError(ProviderQuotaExceeded()), [*HEAD, "code", "message", "status"]),
    ]
    for event, keys in cases:
        payload = event_payload(g, event)  # type: ignore[arg-type]  # each case is a ChatEvent
        assert list(payload) == keys, event
    end = event_payload(g, MessageEnd(usage, [], None))
    assert end["metadata"]["usage"]["prompt_unit_price"] == "0.15"  # prices are strings in SSE
    assert end["metadata"]["usage"]["total_tokens"] == 5
    err = event_payload(g, GenerationError(ProviderQuotaExceeded()))
    assert (err["code"], err["status"]) == ("provider_quota_exceeded", 400)


def test_completion_events_have_no_conversation_id() -> None:
    assert list(event_payload(gen("completion"), MessageDelta("x")))[:3] == ["event", "message_id", "created_at"]


def test_blocking_folds_deltas_and_replace_with_numeric_prices() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=2, prompt_unit_price=Decimal("0.15"))
    events: list[ChatEvent] = [
        MessageDelta("a"),
        MessageDelta("b"),
        MessageReplace("clean"),
        MessageDelta("!"),
        MessageEnd(usage, [], None),
    ]
    body = blocking_body(gen(), events, "chat")
    assert body["answer"] == "clean!" and body["metadata"]["usage"]["prompt_unit_price"] == 0.15
    assert list(body) == [
        "event",
        "task_id",
        "id",
        "message_id",
        "conversation_id",
        "mode",
        "answer",
        "metadata",
        "created_at",
    ]
