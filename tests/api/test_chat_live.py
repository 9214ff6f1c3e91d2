"""Chat against a live `openify serve` over real HTTP: the seed client code, stop, client disconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.chatkit import CHAT_DSL, providers_yaml
from tests.conftest import LiveServer, start_server, stop_server
from tests.fake_llm.server import FakeLLM


@pytest.fixture
def live(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Iterator[tuple[LiveServer, str]]:
    data = tmp_path / "live"
    data.mkdir()
    (data / "providers.yaml").write_text(providers_yaml(fake_llm), encoding="utf-8")
    server = start_server(data, database_url)
    try:
        out = server.cli("app", "import", str(CHAT_DSL))
        assert out.returncode == 0, out.stderr
        yield server, json.loads(out.stdout)["api_key"]
    finally:
        stop_server(server)


def test_seed_client_code_runs_unchanged(live: tuple[LiveServer, str], fake_llm: FakeLLM) -> None:
    """The client code of the issue, as users write it against Dify, but for the base URL."""
    server, api_key = live
    base_url = server.base_url + "/v1"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    fake_llm.reply("Hello there!", '{"Your Output": "Greeting"}', "Second answer, streamed.")

    # blocking
    r = httpx.post(
        f"{base_url}/chat-messages",
        headers=headers,
        json={
            "inputs": {},
            "query": "Hello",
            "response_mode": "blocking",
            "conversation_id": "",
            "user": "abc-123",
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    conversation_id = r.json()["conversation_id"]
    assert r.json()["answer"] == "Hello there!"
    deadline = time.monotonic() + 10  # the new conversation is named off the hot path, after the answer
    while time.monotonic() < deadline:
        convs = httpx.get(f"{base_url}/conversations", headers=headers, params={"user": "abc-123"}).json()
        if convs["data"][0]["name"] == "Greeting":
            break
        time.sleep(0.05)
    assert convs["data"][0]["name"] == "Greeting"

    # streaming, read line by line
    answer, end = "", None
    with httpx.stream(
        "POST",
        f"{base_url}/chat-messages",
        headers=headers,
        json={
            "inputs": {},
            "query": "Tell me more",
            "response_mode": "streaming",
            "conversation_id": conversation_id,
            "user": "abc-123",
        },
        timeout=30,
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache" and resp.headers["x-accel-buffering"] == "no"
        for line in resp.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["event"] == "message":
                    answer += event["answer"]
                elif event["event"] == "message_end":
                    end = event
    assert answer == "Second answer, streamed."
    assert end is not None and end["conversation_id"] == conversation_id
    assert end["metadata"]["usage"]["total_tokens"] > 0

    convs = httpx.get(f"{base_url}/conversations", headers=headers, params={"user": "abc-123", "limit": 20}).json()
    assert [c["id"] for c in convs["data"]] == [conversation_id]
    msgs = httpx.get(
        f"{base_url}/messages",
        headers=headers,
        params={"conversation_id": conversation_id, "user": "abc-123", "limit": 20},
    ).json()
    assert [m["answer"] for m in msgs["data"]] == ["Hello there!", "Second answer, streamed."]

    r = httpx.request(
        "DELETE", f"{base_url}/conversations/{conversation_id}", headers=headers, json={"user": "abc-123"}
    )
    assert r.status_code == 204
    convs = httpx.get(f"{base_url}/conversations", headers=headers, params={"user": "abc-123", "limit": 20}).json()
    assert convs["data"] == []


def _stream_until_first(
    base: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[httpx.Response, Any, dict[str, Any]]:
    client = httpx.Client(timeout=30)
    resp = client.send(client.build_request("POST", f"{base}/chat-messages", headers=headers, json=body), stream=True)
    lines = resp.iter_lines()
    for line in lines:
        if line.startswith("data: "):
            return resp, lines, json.loads(line[6:])
    raise AssertionError("no event")


def _messages(base: str, headers: dict[str, str], cid: str, user: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/messages", headers=headers, params={"conversation_id": cid, "user": user})
    return r.json()["data"]  # type: ignore[no-any-return]


def test_stop_ends_the_stream_within_a_second_and_stores_the_partial_answer(
    live: tuple[LiveServer, str], fake_llm: FakeLLM
) -> None:
    server, key = live
    base, headers = server.base_url + "/v1", {"Authorization": f"Bearer {key}"}
    full = " ".join(f"word{i}" for i in range(100))
    fake_llm.reply(full)
    fake_llm.token_latency_s = 0.1  # 10 s for the whole answer
    body = {"inputs": {}, "query": "long", "response_mode": "streaming", "user": "u1", "auto_generate_name": False}
    resp, lines, first = _stream_until_first(base, headers, body)
    # another user's stop is ignored
    r = httpx.post(f"{base}/chat-messages/{first['task_id']}/stop", headers=headers, json={"user": "intruder"})
    assert r.json() == {"result": "success"}
    time.sleep(0.3)
    started = time.monotonic()
    r = httpx.post(f"{base}/chat-messages/{first['task_id']}/stop", headers=headers, json={"user": "u1"})
    assert r.status_code == 200 and r.json() == {"result": "success"}
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    elapsed = time.monotonic() - started
    resp.close()
    assert elapsed < 1.0
    assert events[-1]["event"] == "message_end"
    streamed = first["answer"] + "".join(e.get("answer", "") for e in events if e["event"] == "message")
    assert 0 < len(streamed) < len(full) and full.startswith(streamed)
    stored = _messages(base, headers, first["conversation_id"], "u1")
    assert stored[0]["answer"] == streamed and stored[0]["status"] == "normal"


def test_a_stop_reaches_a_chat_in_another_server_process(
    tmp_path: Path, database_url: str, redis_url: str, fake_llm: FakeLLM
) -> None:
    """Two servers on one database and one Redis; the stop lands on the one that does not run the generation,
    and is checked there as it would be locally: another user's stop is ignored."""
    servers = []
    try:
        for name in ("runner", "other"):
            data = tmp_path / name
            data.mkdir()
            (data / "providers.yaml").write_text(providers_yaml(fake_llm), encoding="utf-8")
            servers.append(start_server(data, database_url, {"OPENIFY_REDIS_URL": redis_url}))
            if name == "runner":
                out = servers[0].cli("app", "import", str(CHAT_DSL))
                assert out.returncode == 0, out.stderr
                key = json.loads(out.stdout)["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        runner, other = (s.base_url + "/v1" for s in servers)
        full = " ".join(f"word{i}" for i in range(100))
        fake_llm.reply(full)
        fake_llm.token_latency_s = 0.1  # 10 s for the whole answer
        body = {"inputs": {}, "query": "long", "response_mode": "streaming", "user": "u1", "auto_generate_name": False}
        resp, lines, first = _stream_until_first(runner, headers, body)
        stop = f"{other}/chat-messages/{first['task_id']}/stop"
        assert httpx.post(stop, headers=headers, json={"user": "intruder"}).json() == {"result": "success"}
        time.sleep(0.5)  # the intruder's stop is ignored in the runner too: words keep coming meanwhile
        started = time.monotonic()
        assert httpx.post(stop, headers=headers, json={"user": "u1"}).json() == {"result": "success"}
        events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
        elapsed = time.monotonic() - started
        resp.close()
        assert elapsed < 1.0 and events[-1]["event"] == "message_end"
        streamed = first["answer"] + "".join(e.get("answer", "") for e in events if e["event"] == "message")
        assert 0 < len(streamed) < len(full)
        assert len(streamed) > len("word0 word1 word2 word3")  # it went on through the intruder's stop
    finally:
        for server in servers:
            stop_server(server)


def test_client_disconnect_still_completes_and_stores(live: tuple[LiveServer, str], fake_llm: FakeLLM) -> None:
    server, key = live
    base, headers = server.base_url + "/v1", {"Authorization": f"Bearer {key}"}
    full = " ".join(f"w{i}" for i in range(20))
    fake_llm.reply(full)
    fake_llm.token_latency_s = 0.05
    body = {"inputs": {}, "query": "go", "response_mode": "streaming", "user": "u1", "auto_generate_name": False}
    resp, _, first = _stream_until_first(base, headers, body)
    resp.close()  # the client hangs up after the first event
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stored = _messages(base, headers, first["conversation_id"], "u1")
        if stored and stored[0]["answer"] == full:
            break
        time.sleep(0.1)
    assert stored[0]["answer"] == full and stored[0]["status"] == "normal"
    assert stored[0]["message_tokens"] > 0 and stored[0]["answer_tokens"] > 0
