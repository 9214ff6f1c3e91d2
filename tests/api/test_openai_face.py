"""Every app as an OpenAI model: the `openai` SDK over real HTTP against chat, agent-chat, completion, chatflow and
workflow apps, blocking and streamed, with usage, end users, conversations and OpenAI-shaped errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import settings  # noqa: F401 - every model provider is the stand-in
from tests.api.workflow_kit import dsl, end, start, template, text_input
from tests.conftest import AppKit, free_port, import_app
from tests.fake_llm.server import FakeLLM


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    """The app served over real HTTP on loopback (its lifespan already runs in the `app` fixture)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def _client(base_url: str, kit: AppKit) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=kit.key, base_url=f"{base_url}/openai/v1", max_retries=0, timeout=20)


def _completion_app(services: Services) -> AppKit:
    form = [{"paragraph": {"variable": "text", "label": "Text", "required": True, "max_length": 1000}}]
    return import_app(services, chatkit.chat_dsl("completion", user_input_form=form, pre_prompt="Echo {{text}}"))


WORKFLOW = dsl(
    [start(text_input("q")), template("t", "上: {{ q | upper }}", {"q": ["start", "q"]}), end(out=["t", "output"])],
    [("start", "t"), ("t", "end")],
)
CHATFLOW = dsl(
    [start(), {"id": "answer", "type": "answer", "answer": "{{#sys.query#}} #{{#sys.dialogue_count#}}"}],
    [("start", "answer")],
    mode="advanced-chat",
)


async def test_chat_app_blocking_and_streamed_with_usage_users_and_history(
    base_url: str, services: Services, fake_llm: FakeLLM
) -> None:
    kit = import_app(services, chatkit.chat_dsl("chat"))
    client = _client(base_url, kit)
    models = await client.models.list()
    assert [m.id for m in models.data] == ["t-chat"]

    raw = await client.chat.completions.with_raw_response.create(
        model="t-chat",
        user="alice",
        messages=[
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "第一个问题"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "你好 world"},
        ],
    )
    done = raw.parse()
    assert done.choices[0].message.content == "echo: 你好 world"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    # The history went to the model as the app's history, before the last user message.
    sent = [(m["role"], m["content"]) for m in fake_llm.received[-1]["messages"]]
    assert sent[-3:] == [("user", "第一个问题"), ("assistant", "first answer"), ("user", "你好 world")]
    conversation = raw.headers["x-conversation-id"]
    # `user` is the end user: the conversation is alice's, not bob's.
    async with httpx.AsyncClient(base_url=base_url, headers=kit.auth) as http:
        listed = (await http.get("/v1/conversations", params={"user": "alice"})).json()
        assert [c["id"] for c in listed["data"]] == [conversation]
        assert (await http.get("/v1/conversations", params={"user": "bob"})).json()["data"] == []

    # Streamed, continuing the conversation by header: its stored history is what the model sees.
    stream = await client.chat.completions.create(
        model=kit.app_id,
        user="alice",
        messages=[{"role": "user", "content": "again"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Conversation-Id": conversation},
    )
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: again"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    sent = [(m["role"], m["content"]) for m in fake_llm.received[-1]["messages"]]
    assert sent[-3:] == [("user", "你好 world"), ("assistant", "echo: 你好 world"), ("user", "again")]


async def test_agent_completion_chatflow_and_workflow_apps_answer(
    base_url: str, services: Services, fake_llm: FakeLLM
) -> None:
    agent = import_app(
        services,
        chatkit.chat_dsl("agent-chat", agent_mode={"enabled": True, "strategy": "function_call", "tools": []}),
    )
    fake_llm.reply("the agent's answer")
    out = await _client(base_url, agent).chat.completions.create(
        model=agent.app_id, messages=[{"role": "user", "content": "hi"}]
    )
    assert out.choices[0].message.content == "the agent's answer"

    completion = _completion_app(services)
    out = await _client(base_url, completion).chat.completions.create(
        model=completion.app_id, messages=[{"role": "user", "content": "写一首诗"}]
    )
    assert (out.choices[0].message.content or "").startswith("echo: ")
    assert "写一首诗" in fake_llm.received[-1]["messages"][-1]["content"]  # the message filled the first text input

    workflow = import_app(services, WORKFLOW)
    client = _client(base_url, workflow)
    out = await client.chat.completions.create(model=workflow.app_id, messages=[{"role": "user", "content": "abc"}])
    assert out.choices[0].message.content == "上: ABC"
    stream = await client.chat.completions.create(
        model=workflow.app_id, messages=[{"role": "user", "content": "xyz"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "上: XYZ"

    chatflow = import_app(services, CHATFLOW)
    client = _client(base_url, chatflow)
    first = await client.chat.completions.with_raw_response.create(
        model=chatflow.app_id, messages=[{"role": "user", "content": "一"}]
    )
    assert first.parse().choices[0].message.content == "一 #1"
    conv = first.headers["x-conversation-id"]
    stream = await client.chat.completions.create(
        model=chatflow.app_id,
        messages=[{"role": "user", "content": "二"}],
        stream=True,
        extra_headers={"X-Conversation-Id": conv},
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "二 #2"


async def test_errors_take_openai_shape(base_url: str, services: Services) -> None:
    kit = import_app(services, chatkit.chat_dsl("chat"))
    client = _client(base_url, kit)
    with pytest.raises(openai.NotFoundError) as nf:
        await client.chat.completions.create(model="someone-else", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(api_key="app-wrong", base_url=f"{base_url}/openai/v1", max_retries=0).models.list()
    bad: list[dict[str, Any]] = [
        {"model": "t-chat", "messages": []},
        {"model": "t-chat", "messages": [{"role": "assistant", "content": "no user"}]},
        {"model": "t-chat", "messages": [{"role": "user", "content": "x"}], "stream": "sometimes"},
    ]
    async with httpx.AsyncClient(base_url=f"{base_url}/openai/v1", headers=kit.auth) as http:
        for body in bad:
            r = await http.post("/chat/completions", json=body)
            assert r.status_code == 400, r.text
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}
            assert r.json()["error"]["type"] == "invalid_request_error"
        r = await http.post(
            "/chat/completions",
            json={"model": "t-chat", "messages": [{"role": "user", "content": "x"}]},
            headers={"X-Conversation-Id": "not-a-uuid"},
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "X-Conversation-Id"
