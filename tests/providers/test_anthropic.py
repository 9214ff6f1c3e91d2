"""Anthropic's Messages API over real HTTP against the stand-in's /v1/messages."""

from __future__ import annotations

import json

import pytest

from openify.errors import CompletionRequestError, ProviderQuotaExceeded
from openify.providers.base import ChatMessage, LLMRequest, TextDelta, ToolCall, ToolCallDelta, ToolSpec, UsageReport
from openify.providers.manager import ProviderManager
from tests.fake_llm.server import FakeLLM
from tests.providers.conftest import API_KEY, FAST, MakeManager


@pytest.fixture
def claude(make_manager: MakeManager, fake_llm: FakeLLM) -> ProviderManager:
    return make_manager({"anthropic": {"base_url": fake_llm.base_url.removesuffix("/v1"), "api_key": API_KEY, **FAST}})


async def test_stream_with_system_prompt_and_usage(claude: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply("Bonjour à tous")
    request = LLMRequest(
        model="claude-sonnet-4",
        messages=[ChatMessage("system", "Answer in French."), ChatMessage("user", "Say hello")],
        params={"temperature": 0.5},
    )
    events = [e async for e in claude.llm("langgenius/anthropic/anthropic", "claude-sonnet-4").stream(request)]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Bonjour", " à", " tous"]
    report = events[-1]
    assert isinstance(report, UsageReport) and report.finish_reason == "stop"
    assert (report.usage.prompt_tokens, report.usage.completion_tokens) == (5, 3)  # the fake's figures
    sent = fake_llm.received[-1]
    assert sent["system"] == "Answer in French."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert sent["max_tokens"] == 4096 and sent["temperature"] == 0.5 and sent["stream"] is True
    headers = fake_llm.headers[-1]
    assert headers["x-api-key"] == API_KEY and headers["anthropic-version"] == "2023-06-01"


async def test_tool_use_round_trip(claude: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply_tool_call("lookup", {"q": "openify"})
    tool = ToolSpec("lookup", "Search", {"type": "object", "properties": {"q": {"type": "string"}}})
    request = LLMRequest(model="claude-sonnet-4", messages=[ChatMessage("user", "search it")], tools=[tool])
    result = await claude.llm("anthropic", "claude-sonnet-4").invoke(request)
    assert len(result.tool_calls) == 1 and result.finish_reason == "tool_calls"
    call = result.tool_calls[0]
    assert call.name == "lookup" and json.loads(call.arguments) == {"q": "openify"}
    assert fake_llm.received[-1]["tools"] == [
        {"name": "lookup", "description": "Search", "input_schema": dict(tool.parameters)}
    ]

    follow_up = LLMRequest(
        model="claude-sonnet-4",
        messages=[
            ChatMessage("user", "search it"),
            ChatMessage("assistant", "", tool_calls=[ToolCall(call.id, call.name, call.arguments)]),
            ChatMessage("tool", "found 3 results", tool_call_id=call.id),
        ],
        tools=[tool],
    )
    await claude.llm("anthropic", "claude-sonnet-4").invoke(follow_up)
    sent = fake_llm.received[-1]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call.id, "name": "lookup", "input": {"q": "openify"}}],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "found 3 results"}],
    }


async def test_streamed_tool_call_is_emitted_once_complete(claude: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply_tool_call("f", {"a": [1, 2]})
    request = LLMRequest(model="c", messages=[ChatMessage("user", "x")], tools=[ToolSpec("f", "", {})])
    events = [e async for e in claude.llm("anthropic", "c").stream(request)]
    calls = [e.call for e in events if isinstance(e, ToolCallDelta)]
    assert len(calls) == 1 and json.loads(calls[0].arguments) == {"a": [1, 2]}


async def test_errors_map_like_openai(claude: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, times=3)
    with pytest.raises(ProviderQuotaExceeded, match="slow down"):
        await claude.llm("anthropic", "c").invoke(LLMRequest(model="c", messages=[ChatMessage("user", "x")]))
    fake_llm.malformed_next()
    with pytest.raises(CompletionRequestError, match="Malformed"):
        await claude.llm("anthropic", "c").invoke(LLMRequest(model="c", messages=[ChatMessage("user", "x")]))


async def test_whole_answer_when_server_ignores_stream(claude: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.ignore_stream = True
    fake_llm.reply("all at once")
    result = await claude.llm("anthropic", "c").invoke(LLMRequest(model="c", messages=[ChatMessage("user", "x")]))
    assert result.text == "all at once" and result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1, 3)
    fake_llm.reply_tool_call("f", {"k": "v"})
    result = await claude.llm("anthropic", "c").invoke(LLMRequest(model="c", messages=[ChatMessage("user", "x")]))
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [("f", {"k": "v"})]
