"""The OpenAI-compatible provider over real HTTP against the stand-in server."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from openify.errors import CompletionRequestError, ModelCurrentlyNotSupport
from openify.providers.base import (
    ChatMessage,
    ImagePart,
    LLMEvent,
    LLMRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageReport,
)
from openify.providers.manager import ProviderManager
from openify.tokens import count_tokens
from tests.fake_llm.server import FakeLLM
from tests.providers.conftest import API_KEY, FAST, MakeManager


def ask(text: str, **fields: object) -> LLMRequest:
    return LLMRequest(model="gpt-4o-mini", messages=[ChatMessage("user", text)], **fields)  # type: ignore[arg-type]


async def events_of(manager: ProviderManager, request: LLMRequest, provider: str = "openai") -> list[LLMEvent]:
    return [e async for e in manager.llm(provider, request.model).stream(request)]


async def test_stream_yields_tokens_then_usage_and_prompt_reaches_model(
    manager: ProviderManager, fake_llm: FakeLLM
) -> None:
    fake_llm.reply("你好, world")
    request = LLMRequest(
        model="gpt-4o-mini",
        messages=[ChatMessage("system", "be brief"), ChatMessage("user", "说你好")],
        params={"temperature": 0.2, "max_tokens": 50},
    )
    events = await events_of(manager, request)

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["你", "好", ",", " world"]
    assert isinstance(events[-1], UsageReport) and events[-1].finish_reason == "stop"
    sent = fake_llm.received[-1]
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "说你好"}]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.2 and sent["max_tokens"] == 50
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {API_KEY}"


async def test_blocking_folds_the_stream(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    result = await manager.llm("openai", "gpt-4o-mini").invoke(ask("ping"))
    assert result.text == "echo: ping"
    assert result.finish_reason == "stop" and result.tool_calls == []
    assert result.usage.completion_tokens == 2  # the fake's own count: "echo:", " ping"


async def test_usage_is_the_providers_with_prices_and_timings(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager(
        {
            "openai": {
                "base_url": fake_llm.base_url,
                "api_key": API_KEY,
                **FAST,
                "models": {"gpt-4o-mini": {"input_price": "0.15", "output_price": "0.60"}},
            }
        }
    )
    fake_llm.reply("one two three four")
    events = await events_of(manager, ask("a b c"))
    usage = events[-1].usage  # type: ignore[union-attr]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 4, 7)  # the fake's figures
    assert usage.prompt_unit_price == Decimal("0.15") and usage.price_unit == Decimal("0.000001")
    assert usage.total_price == Decimal("3") * Decimal("0.15") * Decimal("0.000001") + Decimal("4") * Decimal(
        "0.60"
    ) * Decimal("0.000001")
    assert usage.currency == "USD"
    assert usage.time_to_first_token is not None and 0 < usage.time_to_first_token <= usage.latency


async def test_usage_counted_with_tiktoken_when_provider_sends_none(
    manager: ProviderManager, fake_llm: FakeLLM
) -> None:
    fake_llm.send_usage = False
    fake_llm.reply("The quick brown fox jumps over the lazy dog.")
    events = await events_of(manager, ask("Tell me about foxes, please."))
    usage = events[-1].usage  # type: ignore[union-attr]
    assert usage.completion_tokens == count_tokens("The quick brown fox jumps over the lazy dog.")
    assert usage.prompt_tokens == count_tokens("Tell me about foxes, please.")


async def test_usage_estimated_for_non_openai_models(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager({"deepseek": {"base_url": fake_llm.base_url, "api_key": API_KEY, **FAST}})
    fake_llm.send_usage = False
    fake_llm.reply("你好世界")
    request = LLMRequest(model="deepseek-chat", messages=[ChatMessage("user", "说你好")])
    events = await events_of(manager, request, provider="langgenius/deepseek/deepseek")
    usage = events[-1].usage  # type: ignore[union-attr]
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 4)  # one per CJK character


async def test_tool_call_is_streamed_as_one_complete_call(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply_tool_call("get_weather", {"city": "北京"})
    tool = ToolSpec("get_weather", "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})
    events = await events_of(manager, ask("weather in Beijing?", tools=[tool]))

    calls = [e.call for e in events if isinstance(e, ToolCallDelta)]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].id
    assert json.loads(calls[0].arguments) == {"city": "北京"}
    assert events[-1].finish_reason == "tool_calls"  # type: ignore[union-attr]
    assert fake_llm.received[-1]["tools"][0] == {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather of a city", "parameters": dict(tool.parameters)},
    }


async def test_tool_results_and_images_are_sent_in_openai_shape(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    request = LLMRequest(
        model="gpt-4o",
        messages=[
            ChatMessage("user", ["what is this?", ImagePart("data:image/png;base64,AAAA", detail="low")]),
            ChatMessage("assistant", "", tool_calls=[call]),
            ChatMessage("tool", "sunny", tool_call_id="call_1"),
            ChatMessage("user", "and now?"),
        ],
    )
    await events_of(manager, request)
    sent = fake_llm.received[-1]["messages"]
    assert sent[0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}


async def test_structured_output_sends_response_format(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fake_llm.reply('{"name": "Ada"}')
    result = await manager.llm("openai", "gpt-4o").invoke(ask("who?", response_format=schema))
    assert json.loads(result.text) == {"name": "Ada"}
    assert fake_llm.received[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    await manager.llm("openai", "gpt-4o").invoke(ask("who?", params={"response_format": "json_object"}))
    assert fake_llm.received[-1]["response_format"] == {"type": "json_object"}


async def test_completion_mode_uses_legacy_completions(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply("Once upon a time")
    request = ask("Write a story", mode="completion", stop=["\n\n"])
    result = await manager.llm("openai", "gpt-3.5-turbo-instruct").invoke(request)
    assert result.text == "Once upon a time"
    assert fake_llm.received[-1]["prompt"] == "Write a story"
    assert fake_llm.received[-1]["stop"] == ["\n\n"]
    assert result.usage.completion_tokens == 4


async def test_reasoning_content_is_wrapped_in_think_tags(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply_with_reasoning("Let me think.", "42")
    result = await manager.llm("openai", "deepseek-reasoner").invoke(ask("meaning of life?"))
    assert result.text == "<think>\nLet me think.\n</think>42"  # as Dify shows DeepSeek R1's reasoning


async def test_capabilities_off_refuse_before_calling(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager({"local": {"base_url": fake_llm.base_url, "models": {"tiny": {"features": []}}}})
    llm = manager.llm("local", "tiny")
    assert (llm.supports_tools, llm.supports_vision) == (False, False)
    tool = ToolSpec("f", "", {"type": "object"})
    with pytest.raises(ModelCurrentlyNotSupport) as info:
        await llm.invoke(ask("x", tools=[tool]))
    assert info.value.code == "model_currently_not_support"
    with pytest.raises(ModelCurrentlyNotSupport):
        await llm.invoke(LLMRequest(model="tiny", messages=[ChatMessage("user", ["see", ImagePart("http://x/a.png")])]))
    assert fake_llm.received == []


async def test_server_ignoring_stream_still_answers(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.ignore_stream = True
    fake_llm.reply("whole answer")
    events = await events_of(manager, ask("x"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["whole answer"]
    assert events[-1].usage.completion_tokens == 2  # type: ignore[union-attr]
    fake_llm.reply_tool_call("f", {"a": 1})
    result = await manager.llm("openai", "gpt-4o").invoke(ask("x", tools=[ToolSpec("f", "", {})]))
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [("f", {"a": 1})]
    fake_llm.reply("legacy")
    assert (await manager.llm("openai", "davinci-002").invoke(ask("x", mode="completion"))).text == "legacy"


async def test_error_reported_with_status_200_is_mapped(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(200, {"error": {"message": "model overloaded", "code": 503}}, times=3)
    with pytest.raises(CompletionRequestError, match="model overloaded"):
        await manager.llm("openai", "gpt-4o").invoke(ask("x"))
    assert len(fake_llm.received) == 3  # a 503 in the body is retried like a 503 status


async def test_think_tag_closed_when_reasoning_ends_the_answer(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply_with_reasoning("Only thoughts.", "")
    result = await manager.llm("openai", "deepseek-reasoner").invoke(ask("?"))
    assert result.text == "<think>\nOnly thoughts.\n</think>"
