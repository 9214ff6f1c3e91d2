"""The stand-in server itself, through plain httpx: the contract other tests rely on."""

from __future__ import annotations

import httpx

from tests.fake_llm.server import FakeLLM, hash_vector


def chat(fake: FakeLLM, text: str, **extra: object) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(fake.base_url + "/chat/completions", json=body, timeout=5)


def test_blocking_echo_queue_and_usage(fake_llm: FakeLLM) -> None:
    assert chat(fake_llm, "hello").json()["choices"][0]["message"]["content"] == "echo: hello"
    fake_llm.reply("first", "second")
    answers = [chat(fake_llm, "x").json() for _ in range(3)]
    assert [a["choices"][0]["message"]["content"] for a in answers] == ["first", "second", "echo: x"]
    assert answers[0]["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    assert [b["messages"][0]["content"] for b in fake_llm.received] == ["hello", "x", "x", "x"]


def test_stream_frames_usage_and_done(fake_llm: FakeLLM) -> None:
    fake_llm.reply("a 你好")
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", fake_llm.base_url + "/chat/completions", json=body, timeout=5) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and '"usage"' in lines[-2]
    assert sum('"content": "' in line for line in lines) == 4  # role chunk "", "a", " 你", "好"


def test_failures_tool_calls_embeddings_models(fake_llm: FakeLLM) -> None:
    fake_llm.fail_next(503, times=2)
    assert [chat(fake_llm, "x").status_code for _ in range(3)] == [503, 503, 200]
    fake_llm.reply_tool_call("f", {"a": 1})
    call = chat(fake_llm, "x").json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "f", "arguments": '{"a": 1}'}
    r = httpx.post(fake_llm.base_url + "/embeddings", json={"input": "t", "dimensions": 8}, timeout=5)
    assert r.json()["data"][0]["embedding"] == hash_vector("t", 8)
    assert httpx.get(fake_llm.base_url + "/models", timeout=5).json()["data"][0]["id"] == "fake-model"
