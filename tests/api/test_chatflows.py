"""Chatflows (advanced-chat) through POST /chat-messages: Answer streaming, Dify's event order, stored turns,
conversation variables across turns, the real exports whose answers Dify's tests state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from openify.services.container import Services
from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import code, dsl, sse_events, start, text_input
from tests.conftest import DSL_DIR, import_app
from tests.fake_llm.server import FakeLLM

F17 = DSL_DIR / "17-chatflow-0.3.1-loop-contains-answer.yml"
F19 = DSL_DIR / "19-chatflow-0.4.0-conversation-var-in-iteration.yml"
F20 = DSL_DIR / "20-chatflow-0.5.0-conversation-var-v1-overwrite.yml"
F15 = DSL_DIR / "15-chatflow-0.2.0-artifact.yml"


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM) -> Settings:
    """File 15 names volcengine_maas: point that provider at the stand-in model server."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    providers = {
        "providers": {"volcengine_maas": {"base_url": fake_llm.base_url, "api_key": "sk-test", "max_retries": 0}}
    }
    (settings.data_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    return settings


async def _chat(client: httpx.AsyncClient, auth: dict[str, str], query: str, **extra: Any) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": "u1", **extra}
    return await client.post("/v1/chat-messages", headers=auth, json=body)


@pytest.mark.parametrize(
    ("path", "query", "answer"),
    [
        (F17, "1", "1\n2\n1 + 2"),
        (F19, "hello there", "hello there"),
        (F20, "abc", "Current Value Of `conv_var` is:abc"),
    ],
    ids=["17", "19", "20"],
)
async def test_real_exports_answer_as_dify_expects(
    client: httpx.AsyncClient, services: Services, path: Path, query: str, answer: str
) -> None:
    kit = import_app(services, path)
    r = await _chat(client, kit.auth, query)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == answer and body["mode"] == "advanced-chat" and body["event"] == "message"
    assert body["id"] == body["message_id"]
    assert set(body["metadata"]) == {"annotation_reply", "retriever_resources", "usage"}
    streamed = sse_events((await _chat(client, kit.auth, query, response_mode="streaming")).text)
    assert "".join(e["answer"] for e in streamed if e["event"] == "message") == answer


async def test_stream_order_and_keys(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, F17)
    events = sse_events((await _chat(client, kit.auth, "1", response_mode="streaming")).text)
    names = [e["event"] for e in events]
    assert names[:2] == ["ping", "workflow_started"]
    assert names[-2:] == ["message_end", "workflow_finished"]
    assert {"loop_started", "loop_next", "loop_completed", "node_started", "node_finished", "message"} <= set(names)
    # Answer text inside the loop streams before the loop completes, as soon as each round produces it.
    assert names.index("message") < names.index("loop_completed")
    conv, msg, task = events[1]["conversation_id"], events[1]["message_id"], events[1]["task_id"]
    for e in events[1:]:
        assert (e["conversation_id"], e["message_id"], e["task_id"]) == (conv, msg, task)
        if e["event"] in ("message", "message_end"):
            assert "workflow_run_id" not in e
        else:
            assert e["workflow_run_id"] == events[1]["workflow_run_id"] and "data" in e
    first = next(e for e in events if e["event"] == "message")
    assert first["id"] == msg and isinstance(first["from_variable_selector"], list)
    end = events[-2]
    assert end["id"] == msg and end["metadata"]["usage"]["total_price"] == "0" and end["files"] == []
    assert events[-1]["data"]["outputs"]["answer"] == "1\n2\n1 + 2"
    run = (await client.get(f"/v1/workflows/run/{events[1]['workflow_run_id']}", headers=kit.auth)).json()
    assert run["status"] == "succeeded"


async def test_turns_are_stored_and_conversation_variables_persist(
    client: httpx.AsyncClient, services: Services
) -> None:
    kit = import_app(services, F20)
    first = (await _chat(client, kit.auth, "first")).json()
    conv = first["conversation_id"]
    q = {"user": "u1", "conversation_id": conv}
    got = (await client.get("/v1/conversations/" + conv + "/variables", headers=kit.auth, params={"user": "u1"})).json()
    assert [(v["name"], v["value"]) for v in got["data"]] == [("conv_var", "first")]
    second = (await _chat(client, kit.auth, "second", conversation_id=conv)).json()
    assert second["conversation_id"] == conv
    assert second["answer"] == "Current Value Of `conv_var` is:second"
    messages = (await client.get("/v1/messages", headers=kit.auth, params=q)).json()["data"]
    assert [(m["query"], m["answer"]) for m in messages] == [
        ("first", "Current Value Of `conv_var` is:first"),
        ("second", "Current Value Of `conv_var` is:second"),
    ]
    convs = (await client.get("/v1/conversations", headers=kit.auth, params={"user": "u1"})).json()["data"]
    assert [c["id"] for c in convs] == [conv]
    # An unknown conversation id starts a new conversation in a chatflow, as Dify does.
    other = (await _chat(client, kit.auth, "x", conversation_id="00000000-0000-0000-0000-000000000000")).json()
    assert other["conversation_id"] != conv


# A chatflow whose assigner reads the value before overwriting it: proves the value survives between turns.
COUNTER = dsl(
    [
        start(),
        code(
            "inc",
            "def main(n: int) -> dict:\n    return {'n': n + 1}\n",
            {"n": ["conversation", "count"]},
            {"n": "number"},
        ),
        {
            "id": "assign",
            "type": "assigner",
            "version": "2",
            "items": [
                {
                    "variable_selector": ["conversation", "count"],
                    "operation": "over-write",
                    "input_type": "variable",
                    "value": ["inc", "n"],
                }
            ],
        },
        {"id": "answer", "type": "answer", "answer": "count={{#conversation.count#}}"},
    ],
    [("start", "inc"), ("inc", "assign"), ("assign", "answer")],
    mode="advanced-chat",
    conversation_variables=[{"id": "c1", "name": "count", "value_type": "number", "value": 0, "description": ""}],
)


async def test_conversation_variable_counts_across_turns(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, COUNTER)
    first = (await _chat(client, kit.auth, "a")).json()
    assert first["answer"] == "count=1"
    conv = first["conversation_id"]
    assert (await _chat(client, kit.auth, "b", conversation_id=conv)).json()["answer"] == "count=2"
    assert (await _chat(client, kit.auth, "c", conversation_id=conv)).json()["answer"] == "count=3"
    assert (await _chat(client, kit.auth, "d")).json()["answer"] == "count=1"  # a new conversation starts over


FAILING_CHAT = dsl(
    [
        start(text_input("topic")),
        code("boom", "def main() -> dict:\n    raise ValueError('kaboom')\n", {}, {"x": "string"}),
        {"id": "answer", "type": "answer", "answer": "{{#boom.x#}}"},
    ],
    [("start", "boom"), ("boom", "answer")],
    mode="advanced-chat",
)


async def test_failures_and_bad_inputs(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, FAILING_CHAT)
    r = await _chat(client, kit.auth, "q", inputs={"topic": "t"})
    assert str(assert_dify_error(r, 400, "invalid_param")["message"]).startswith("Run failed: ")
    events = sse_events((await _chat(client, kit.auth, "q", inputs={"topic": "t"}, response_mode="streaming")).text)
    assert [e["event"] for e in events][-2:] == ["workflow_finished", "error"]
    assert events[-2]["data"]["status"] == "failed"
    err = events[-1]
    assert err["code"] == "invalid_param" and err["status"] == 400 and "kaboom" in err["message"]
    assert "task_id" not in err
    msgs = (
        await client.get(
            "/v1/messages", headers=kit.auth, params={"user": "u1", "conversation_id": err["conversation_id"]}
        )
    ).json()
    assert msgs["data"][0]["status"] == "error"
    # Bad inputs: 400 in blocking mode; in streaming, Dify's in-band frame.
    assert_dify_error(await _chat(client, kit.auth, "q"), 400, "invalid_param")
    events = sse_events((await _chat(client, kit.auth, "q", response_mode="streaming")).text)
    assert events == [
        {"event": "ping"},
        {"event": "error", "message": "topic is required in input form", "status": 500},
    ]


async def test_15_runs_against_the_model_server_with_memory(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = import_app(services, F15)
    fake_llm.reply("first answer")
    # No title call here: its request would race with the replies this test scripts.
    first = (await _chat(client, kit.auth, "make a page", auto_generate_name=False)).json()
    assert first["answer"] == "first answer", first
    fake_llm.reply("second answer")
    r = await _chat(client, kit.auth, "again", conversation_id=first["conversation_id"], response_mode="streaming")
    events = sse_events(r.text)
    assert "".join(e["answer"] for e in events if e["event"] == "message") == "second answer"
    sent = fake_llm.received[-1]["messages"]
    contents = [m["content"] if isinstance(m["content"], str) else str(m["content"]) for m in sent]
    assert any("make a page" in c for c in contents) and any("first answer" in c for c in contents)  # memory
    assert "again" in contents[-1]
    end = next(e for e in events if e["event"] == "message_end")
    assert end["metadata"]["usage"]["total_tokens"] > 0


async def test_new_conversation_is_titled_by_the_model_after_the_answer(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = import_app(services, F15)
    fake_llm.reply("the answer", '{"Your Output": "网页制作"}')
    first = (await _chat(client, kit.auth, "make a web page for me please")).json()
    assert first["answer"] == "the answer", first
    names: list[str] = []
    for _ in range(100):
        convs = (await client.get("/v1/conversations", headers=kit.auth, params={"user": "u1"})).json()["data"]
        names = [c["name"] for c in convs]
        if names == ["网页制作"]:
            break
        await asyncio.sleep(0.05)
    assert names == ["网页制作"]
    assert "make a web page for me please" in str(fake_llm.received[-1]["messages"])  # the title prompt had the query

    fake_llm.reply("second")
    other = (await _chat(client, kit.auth, "another long question here", auto_generate_name=False)).json()
    await asyncio.sleep(0.3)
    convs = (await client.get("/v1/conversations", headers=kit.auth, params={"user": "u1"})).json()["data"]
    assert {c["id"]: c["name"] for c in convs}[other["conversation_id"]] == "another long questio…"


async def test_dialogue_count_grows_with_each_turn(client: httpx.AsyncClient, services: Services) -> None:
    answer = {"id": "answer", "type": "answer", "answer": "turn {{#sys.dialogue_count#}}"}
    kit = import_app(services, dsl([start(), answer], [("start", "answer")], mode="advanced-chat"))
    first = (await _chat(client, kit.auth, "one", auto_generate_name=False)).json()
    second = (await _chat(client, kit.auth, "two", conversation_id=first["conversation_id"])).json()
    third = (await _chat(client, kit.auth, "three", conversation_id=first["conversation_id"])).json()
    assert [first["answer"], second["answer"], third["answer"]] == ["turn 1", "turn 2", "turn 3"]
