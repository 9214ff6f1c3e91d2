"""POST /chat-messages for chat apps: blocking and streaming bodies, prompts, history, storage."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from openify.services.container import Services
from openify.services.instances import INSTANCE_ID
from tests.api import chatkit
from tests.api.chatkit import blocking, streaming
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures


async def test_chat_reaches_model_and_is_stored(client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM) -> None:
    fake_llm.reply("你好")
    r = await blocking(client, chat, query="说你好", auto_generate_name=False)
    assert r.status_code == 200, r.text
    body = r.json()
    assert fake_llm.received[-1]["messages"][-1]["content"] == "说你好"
    assert set(body) == {
        "event",
        "task_id",
        "id",
        "message_id",
        "conversation_id",
        "mode",
        "answer",
        "metadata",
        "created_at",
    }
    assert body["event"] == "message" and body["mode"] == "chat" and body["answer"] == "你好"
    assert body["id"] == body["message_id"]
    q = {"conversation_id": body["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"]
    assert [m["answer"] for m in stored] == ["你好"]


async def test_streaming_events_exactly_as_dify(client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM) -> None:
    fake_llm.reply("你好 world")
    events = await streaming(client, chat, query="hi", auto_generate_name=False)
    kinds = [e["event"] for e in events]
    assert kinds == ["message", "message", "message", "message_end"]
    first, end = events[0], events[-1]
    assert list(first) == [
        "event",
        "conversation_id",
        "message_id",
        "created_at",
        "task_id",
        "id",
        "answer",
        "from_variable_selector",
    ]
    assert "".join(e["answer"] for e in events[:-1]) == "你好 world"
    assert {e["message_id"] for e in events} == {first["id"]} and len({e["task_id"] for e in events}) == 1
    assert list(end) == ["event", "conversation_id", "message_id", "created_at", "task_id", "id", "metadata", "files"]
    assert end["files"] is None
    assert set(end["metadata"]) == {"annotation_reply", "retriever_resources", "usage"}
    usage = end["metadata"]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert isinstance(usage["total_price"], str) and usage["currency"] == "USD"  # strings in SSE
    q = {"conversation_id": first["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"]
    assert stored[0]["answer"] == "你好 world" and stored[0]["query"] == "hi"


async def test_blocking_usage_prices_are_numbers(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await blocking(client, chat, query="hi", auto_generate_name=False)
    usage = r.json()["metadata"]["usage"]
    assert isinstance(usage["total_price"], int | float) and isinstance(usage["prompt_unit_price"], int | float)
    assert set(usage) >= {"prompt_tokens", "completion_tokens", "total_tokens", "latency", "currency"}


async def test_history_goes_into_the_prompt(client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM) -> None:
    fake_llm.reply("first answer", "second answer")
    r1 = await blocking(client, chat, query="first question", auto_generate_name=False)
    cid = r1.json()["conversation_id"]
    r2 = await blocking(client, chat, query="second question", conversation_id=cid)
    assert r2.json()["conversation_id"] == cid
    sent = fake_llm.received[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"].startswith("你是精通中国传统周易八卦理论的卜算大师")
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
    ]


async def test_error_after_stream_opened_is_an_error_event(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    fake_llm.fail_next(500)
    events = await streaming(client, chat, query="hi", auto_generate_name=False)
    assert [e["event"] for e in events] == ["error"]
    err = events[0]
    assert err["code"] == "completion_request_error" and err["status"] == 400 and "task_id" not in err
    q = {"conversation_id": err["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"]
    assert stored[0]["status"] == "error" and stored[0]["error"]


async def test_blocking_model_failure_is_a_dify_error(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    fake_llm.fail_next(500)
    r = await blocking(client, chat, query="hi", auto_generate_name=False)
    assert_dify_error(r, 400, "completion_request_error")


async def test_a_turn_left_running_by_a_killed_server_ends_as_error(
    client: httpx.AsyncClient, chat: AppKit, services: Services
) -> None:
    r = await blocking(client, chat, query="hi", auto_generate_name=False)
    body = r.json()
    services.chat.messages.save_answer(body["message_id"], "half an ans")
    with services.db.engine.begin() as c:  # as a server killed mid-answer leaves it
        c.execute(sa.text("UPDATE messages SET status = 'running' WHERE id = :id"), {"id": body["message_id"]})
    assert services.chat.messages.recover([INSTANCE_ID]) == 0  # its process is alive: another's start leaves it
    assert services.chat.messages.recover() == 1
    q = {"conversation_id": body["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"][0]
    assert stored["status"] == "error" and stored["answer"] == "half an ans" and stored["error"]


def _moderated(services: Services) -> AppKit:
    block = {
        "enabled": True,
        "type": "keywords",
        "config": {
            "keywords": "secret\nForbidden",
            "inputs_config": {"enabled": True, "preset_response": "I can't discuss that."},
            "outputs_config": {"enabled": True, "preset_response": "[removed]"},
        },
    }
    return chatkit.import_app(services, chatkit.chat_dsl(sensitive_word_avoidance=block))


async def test_flagged_input_gets_the_preset_char_by_char_without_the_model(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = _moderated(services)
    events = await streaming(client, kit, query="tell me the SECRET", auto_generate_name=False)
    deltas = [e["answer"] for e in events if e["event"] == "message"]
    assert deltas == list("I can't discuss that.") and events[-1]["event"] == "message_end"
    assert fake_llm.received == []


async def test_flagged_output_is_replaced(client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM) -> None:
    kit = _moderated(services)
    fake_llm.reply("this is forbidden knowledge")
    events = await streaming(client, kit, query="hi", auto_generate_name=False)
    assert [e["event"] for e in events][-2:] == ["message_replace", "message_end"]
    assert events[-2]["answer"] == "[removed]" and events[-2]["reason"] == ""
    fake_llm.reply("forbidden again")
    r = await blocking(client, kit, query="hi", auto_generate_name=False)
    assert r.json()["answer"] == "[removed]"
    q = {"conversation_id": r.json()["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=kit.auth, params=q)).json()["data"]
    assert stored[0]["answer"] == "[removed]"
