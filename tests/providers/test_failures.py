"""Upstream failures over real HTTP: retries before the first token only, Dify's codes, closing on abort."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from openify.errors import CompletionRequestError, ProviderQuotaExceeded
from openify.providers.base import ChatMessage, LLMRequest, TextDelta, UsageReport
from openify.providers.manager import ProviderManager
from tests.fake_llm.server import FakeLLM
from tests.providers.conftest import API_KEY, FAST, MakeManager

LONG_ANSWER = " ".join(f"word{i}" for i in range(200))


def ask(text: str = "hi") -> LLMRequest:
    return LLMRequest(model="gpt-4o-mini", messages=[ChatMessage("user", text)])


async def answer(manager: ProviderManager) -> str:
    return "".join(
        [e.text async for e in manager.llm("openai", "gpt-4o-mini").stream(ask()) if isinstance(e, TextDelta)]
    )


async def wait_for(predicate: object, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.01)
    return False


async def test_401_is_completion_request_error_without_the_key(
    manager: ProviderManager, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_llm.fail_next(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}", "type": "auth"}})
    with pytest.raises(CompletionRequestError) as info:
        await answer(manager)
    assert info.value.code == "completion_request_error" and info.value.status == 400
    assert "401" in info.value.detail and "Incorrect API key" in info.value.detail
    assert API_KEY not in info.value.detail
    assert len(fake_llm.received) == 1  # bad credentials are not retried
    assert API_KEY not in caplog.text


async def test_429_is_retried_then_quota_exceeded(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(429, times=3)
    with pytest.raises(ProviderQuotaExceeded) as info:
        await answer(manager)
    assert info.value.code == "provider_quota_exceeded"
    assert len(fake_llm.received) == 3  # the call and max_retries=2 retries


async def test_429_then_success_within_retries(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(429, times=2)
    fake_llm.reply("finally")
    assert await answer(manager) == "finally"


async def test_500_is_retried_then_succeeds(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(500)
    fake_llm.reply("recovered")
    assert await answer(manager) == "recovered"
    assert len(fake_llm.received) == 2


async def test_400_is_not_retried(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(400, {"error": {"message": "context too long"}})
    with pytest.raises(CompletionRequestError, match="context too long"):
        await answer(manager)
    assert len(fake_llm.received) == 1


async def test_malformed_stream_is_completion_request_error(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.malformed_next()
    with pytest.raises(CompletionRequestError, match="Malformed"):
        await answer(manager)


async def test_cut_mid_stream_fails_without_retry(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.reply("one two three four five")
    fake_llm.cut_next(after_chunks=3)  # role chunk + two tokens
    got: list[str] = []
    with pytest.raises(CompletionRequestError, match="Connection error"):
        async for event in manager.llm("openai", "gpt-4o-mini").stream(ask()):
            if isinstance(event, TextDelta):
                got.append(event.text)
    assert got == ["one", " two"]
    assert len(fake_llm.received) == 1  # text was already out: a retry would repeat it


async def test_cut_before_first_token_is_retried(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.cut_next(after_chunks=1)  # only the role chunk, no text yet
    fake_llm.reply("lost", "second try")
    assert await answer(manager) == "second try"
    assert len(fake_llm.received) == 2


async def test_connection_refused_is_completion_request_error(make_manager: MakeManager) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = make_manager({"openai": {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": API_KEY, **FAST}})
    with pytest.raises(CompletionRequestError, match="Connection error: (ConnectError|ClientConnectorError)"):
        await answer(manager)


async def test_read_timeout_is_completion_request_error(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    config = {**FAST, "read_timeout_s": 0.2, "max_retries": 0}
    manager = make_manager({"openai": {"base_url": fake_llm.base_url, "api_key": API_KEY, **config}})
    fake_llm.token_latency_s = 1.0
    with pytest.raises(CompletionRequestError, match="timed out"):
        await answer(manager)


async def test_consumer_aclose_closes_the_upstream(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.token_latency_s = 0.01
    fake_llm.reply(LONG_ANSWER)
    stream = manager.llm("openai", "gpt-4o-mini").stream(ask())
    first = [await anext(stream), await anext(stream)]
    assert [e.text for e in first if isinstance(e, TextDelta)] == ["word0", " word1"]
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    assert await wait_for(lambda: fake_llm.aborted == 1), "the upstream kept streaming to nobody"


async def test_consumer_cancellation_closes_the_upstream(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.token_latency_s = 0.01
    fake_llm.reply(LONG_ANSWER)
    seen: list[str] = []

    async def consume() -> None:
        async for event in manager.llm("openai", "gpt-4o-mini").stream(ask()):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    task = asyncio.create_task(consume())
    assert await wait_for(lambda: len(seen) >= 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for(lambda: fake_llm.aborted == 1), "the upstream kept streaming to nobody"
    assert len(seen) < 100


async def test_stream_ends_with_exactly_one_usage_report(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(503)
    events = [e async for e in manager.llm("openai", "gpt-4o-mini").stream(ask("x"))]
    assert [type(e) for e in events].count(UsageReport) == 1 and isinstance(events[-1], UsageReport)


async def test_retry_after_is_honoured(manager: ProviderManager, fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(429, headers={"retry-after": "0.3"})
    started = time.monotonic()
    assert await answer(manager) == "echo: hi"
    assert time.monotonic() - started >= 0.3  # the configured backoff is 0.01 s
