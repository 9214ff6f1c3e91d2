"""POST /completion-messages: inputs checked against the form, the prompt filled, both modes, stop."""

from __future__ import annotations

import httpx
import pytest

from tests.api import chatkit
from tests.api.chatkit import sse_events
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit
from tests.fake_llm.server import FakeLLM

settings, completion, chat = chatkit.settings, chatkit.completion, chatkit.chat  # fixtures
GOOD = {"A": "PostgreSQL", "default_input": "all users older than 30"}


async def test_completion_fills_the_template_and_answers(
    client: httpx.AsyncClient, completion: AppKit, fake_llm: FakeLLM
) -> None:
    fake_llm.reply("SELECT * FROM users WHERE age > 30;")
    body = {"inputs": GOOD, "user": "u1", "response_mode": "blocking"}
    r = await client.post("/v1/completion-messages", headers=completion.auth, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"event", "task_id", "id", "message_id", "mode", "answer", "metadata", "created_at"}
    assert out["mode"] == "completion" and out["answer"] == "SELECT * FROM users WHERE age > 30;"
    sent = fake_llm.received[-1]
    # no query: the rendered prompt is the user message
    assert sent["messages"] == [
        {
            "role": "user",
            "content": (
                "You are an SQL generator that will help users translate their input natural language query "
                "requirements and target database PostgreSQL into target SQL statements.all users older than 30"
            ),
        }
    ]
    assert sent["max_tokens"] == 512 and sent["temperature"] == 0


async def test_completion_streams_without_conversation_id(
    client: httpx.AsyncClient, completion: AppKit, fake_llm: FakeLLM
) -> None:
    fake_llm.reply("SELECT 1;")
    body = {"inputs": GOOD, "user": "u1", "response_mode": "streaming"}
    r = await client.post("/v1/completion-messages", headers=completion.auth, json=body)
    events = sse_events(r.text)
    assert [e["event"] for e in events] == ["message", "message", "message_end"]
    assert list(events[0]) == ["event", "message_id", "created_at", "task_id", "id", "answer", "from_variable_selector"]
    assert all("conversation_id" not in e for e in events)
    assert "".join(e["answer"] for e in events[:-1]) == "SELECT 1;"


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"default_input": "x"}, "A"),  # required select missing
        ({"A": "Oracle", "default_input": "x"}, "A"),  # not an option
        ({"A": 3, "default_input": "x"}, "A"),  # not a string
        ({"A": "MySQL"}, "default_input"),  # required paragraph missing
        ({"A": "MySQL", "default_input": ["x"]}, "default_input"),
    ],
)
async def test_bad_inputs_are_invalid_param_naming_the_field(
    client: httpx.AsyncClient, completion: AppKit, fake_llm: FakeLLM, inputs: dict[str, object], field: str
) -> None:
    for mode in ("blocking", "streaming"):
        body = {"inputs": inputs, "user": "u1", "response_mode": mode}
        r = await client.post("/v1/completion-messages", headers=completion.auth, json=body)
        err = assert_dify_error(r, 400, "invalid_param")
        assert field in str(err["message"])
    assert fake_llm.received == []


async def test_max_length_is_enforced(client: httpx.AsyncClient, services: chatkit.Services, fake_llm: FakeLLM) -> None:
    form = [{"text-input": {"variable": "name", "label": "Name", "required": True, "max_length": 5}}]
    kit = chatkit.import_app(services, chatkit.chat_dsl("completion", pre_prompt="Hi {{name}}", user_input_form=form))
    r = await client.post(
        "/v1/completion-messages", headers=kit.auth, json={"inputs": {"name": "abcdef"}, "user": "u1"}
    )
    assert "name" in str(assert_dify_error(r, 400, "invalid_param")["message"])
    r = await client.post("/v1/completion-messages", headers=kit.auth, json={"inputs": {"name": "abc"}, "user": "u1"})
    assert r.status_code == 200, r.text
    assert fake_llm.received[-1]["messages"][-1]["content"] == "Hi abc"


async def test_completion_endpoint_on_a_chat_app_is_app_unavailable(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await client.post("/v1/completion-messages", headers=chat.auth, json={"inputs": {}, "user": "u1"})
    assert_dify_error(r, 400, "app_unavailable")
    r = await client.post("/v1/completion-messages/x/stop", headers=chat.auth, json={"user": "u1"})
    assert_dify_error(r, 400, "app_unavailable")


async def test_chat_endpoint_on_a_completion_app_is_not_chat_app(client: httpx.AsyncClient, completion: AppKit) -> None:
    r = await client.post(
        "/v1/chat-messages", headers=completion.auth, json={"inputs": GOOD, "query": "q", "user": "u"}
    )
    assert_dify_error(r, 400, "not_chat_app")
    for path in ("/v1/conversations", "/v1/messages"):
        r = await client.get(path, headers=completion.auth, params={"user": "u", "conversation_id": ""})
        assert_dify_error(r, 400, "not_chat_app")
