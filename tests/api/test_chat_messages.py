"""POST /chat-messages for chat apps: blocking and streaming bodies, prompts, history, storage."""

from __future__ import annotations

import httpx

from tests.api import chatkit
from tests.api.chatkit import blocking
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
