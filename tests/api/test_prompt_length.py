"""A query longer than the model's context is answered as Dify answers it: 400 completion_request_error, with
Dify's message, before anything is stored or sent to the model (the stand-in's context is the default 16,384)."""

from __future__ import annotations

import httpx
import pytest

from openify.services.chat.prompts import TOO_LONG
from tests.api import chatkit
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures


@pytest.mark.parametrize("query", ["x " * 500_000, "长" * 20_000])  # 1 MB of ASCII; 20,000 CJK tokens in 60 KB
@pytest.mark.parametrize("mode", ["blocking", "streaming"])
async def test_query_over_the_context_is_a_400(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM, query: str, mode: str
) -> None:
    body = {"inputs": {}, "query": query, "user": "u1", "response_mode": mode}
    r = await client.post("/v1/chat-messages", headers=chat.auth, json=body)
    assert assert_dify_error(r, 400, "completion_request_error")["message"] == TOO_LONG
    assert fake_llm.received == []
    listed = await client.get("/v1/conversations", headers=chat.auth, params={"user": "u1"})
    assert listed.json()["data"] == []  # nothing stored


async def test_query_that_fits_reaches_the_model(client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM) -> None:
    fake_llm.reply("好")
    query = "长" * 10_000  # 30 KB of UTF-8, more bytes than the context has tokens: counted, and it fits
    body = {"inputs": {}, "query": query, "user": "u1", "response_mode": "blocking"}
    r = await client.post("/v1/chat-messages", headers=chat.auth, json=body)
    assert r.status_code == 200, r.text
    assert fake_llm.received[-1]["messages"][-1]["content"] == query
