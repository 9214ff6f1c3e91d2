"""Content moderation (`sensitive_word_avoidance`): keywords and openai_moderation (the configured moderation
model, here the stand-in's `/moderations`) on chat, completion and chatflow apps; the `api` type is refused at
import, and /parameters never reports moderation on where it does not run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from openify.errors import DSLError
from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import blocking, streaming
from tests.conftest import DSL_DIR, AppKit, import_app
from tests.fake_llm.server import FakeLLM

settings = chatkit.settings  # fixture: every provider name reaches the stand-in
CHATFLOW = DSL_DIR / "20-chatflow-0.5.0-conversation-var-v1-overwrite.yml"


def _block(kind: str, inputs: bool = True, outputs: bool = True, keywords: str = "") -> dict[str, Any]:
    return {
        "enabled": True,
        "type": kind,
        "config": {
            "keywords": keywords,
            "inputs_config": {"enabled": inputs, "preset_response": "不能回答。"},
            "outputs_config": {"enabled": outputs, "preset_response": "[removed]"},
        },
    }


def _chatflow(services: Services, block: dict[str, Any]) -> AppKit:
    doc = yaml.safe_load(CHATFLOW.read_text(encoding="utf-8"))
    doc["workflow"]["features"]["sensitive_word_avoidance"] = block
    return import_app(services, yaml.safe_dump(doc, allow_unicode=True))


def _moderation_calls(fake_llm: FakeLLM) -> list[dict[str, Any]]:
    return [b for b in fake_llm.received if "input" in b and "messages" not in b and "prompt" not in b]


async def test_openai_moderation_of_chat_input_and_output(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = import_app(services, chatkit.chat_dsl(sensitive_word_avoidance=_block("openai_moderation")))
    events = await streaming(client, kit, query="some 暴力 please", auto_generate_name=False)
    assert "".join(e["answer"] for e in events if e["event"] == "message") == "不能回答。"
    assert events[-1]["event"] == "message_end"
    calls = _moderation_calls(fake_llm)
    assert len(calls) == 1 and calls[0]["model"] == "omni-moderation-latest" and "暴力" in calls[0]["input"]
    assert len(fake_llm.received) == 1  # flagged: the model was never asked

    fake_llm.reply("an answer about violence")
    events = await streaming(client, kit, query="hi", auto_generate_name=False)
    assert [e["event"] for e in events][-2:] == ["message_replace", "message_end"]
    assert events[-2]["answer"] == "[removed]"

    fake_llm.reply("a calm answer")
    r = await blocking(client, kit, query="hi", auto_generate_name=False)
    assert r.json()["answer"] == "a calm answer"


async def test_openai_moderation_of_completion_input(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    form = [{"paragraph": {"variable": "topic", "label": "Topic", "required": True}}]
    dsl = chatkit.chat_dsl(
        mode="completion",
        pre_prompt="Write about {{topic}}.",
        user_input_form=form,
        sensitive_word_avoidance=_block("openai_moderation"),
    )
    kit = import_app(services, dsl)
    body = {"inputs": {"topic": "violence"}, "user": "u1", "response_mode": "blocking"}
    r = await client.post("/v1/completion-messages", headers=kit.auth, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "不能回答。"
    assert len(fake_llm.received) == 1  # only the moderation call


async def test_chatflow_keyword_moderation_of_input_and_output(client: httpx.AsyncClient, services: Services) -> None:
    kit = _chatflow(services, _block("keywords", keywords="secret"))
    r = await blocking(client, kit, query="tell me the SECRET")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == "不能回答。" and body["metadata"]["annotation_reply"] is None
    runs = await client.get(
        "/v1/messages", headers=kit.auth, params={"user": "u1", "conversation_id": body["conversation_id"]}
    )
    assert runs.json()["data"][0]["answer"] == "不能回答。"

    # Output side only: the Answer node echoes the query, which holds a keyword.
    out = _chatflow(services, _block("keywords", inputs=False, keywords="secret"))
    events = await streaming(client, out, query="a secret")
    names = [e["event"] for e in events]
    assert names[-3:] == ["message_replace", "message_end", "workflow_finished"], names
    assert events[-3]["answer"] == "[removed]" and events[-3]["reason"] == "output_moderation"
    q = {"user": "u1", "conversation_id": events[-1]["conversation_id"]}
    stored = (await client.get("/v1/messages", headers=out.auth, params=q)).json()["data"]
    assert stored[0]["answer"] == "[removed]"
    r = await blocking(client, out, query="no problem here")
    assert "no problem here" in r.json()["answer"]


async def test_chatflow_openai_moderation(client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM) -> None:
    kit = _chatflow(services, _block("openai_moderation"))
    events = await streaming(client, kit, query="暴力")
    assert [e["event"] for e in events] == ["message", "message_end"]
    assert events[0]["answer"] == "不能回答。"
    assert len(_moderation_calls(fake_llm)) == 1
    r = await blocking(client, kit, query="hello")
    assert "hello" in r.json()["answer"]


def test_api_moderation_is_refused_at_import(services: Services) -> None:
    with pytest.raises(DSLError, match="content moderation of type 'api' is not supported"):
        import_app(services, chatkit.chat_dsl(sensitive_word_avoidance=_block("api")))
    with pytest.raises(DSLError, match=r"workflow\.features\.sensitive_word_avoidance"):
        _chatflow(services, _block("api"))
    # Switched off, the block imports: nothing claims to run.
    off = {**_block("api"), "enabled": False}
    kit = import_app(services, chatkit.chat_dsl(sensitive_word_avoidance=off))
    assert kit.app_id


async def test_parameters_report_moderation_only_where_it_runs(client: httpx.AsyncClient, services: Services) -> None:
    chat = import_app(services, chatkit.chat_dsl(sensitive_word_avoidance=_block("openai_moderation")))
    params = (await client.get("/v1/parameters", headers=chat.auth)).json()
    assert params["sensitive_word_avoidance"]["enabled"] is True
    doc = yaml.safe_load((DSL_DIR / "09-workflow-0.3.1-dual-switch-variable-aggregator.yml").read_text())
    doc["workflow"].setdefault("features", {})["sensitive_word_avoidance"] = _block("keywords", keywords="x")
    flow = import_app(services, yaml.safe_dump(doc))
    params = (await client.get("/v1/parameters", headers=flow.auth)).json()
    assert params["sensitive_word_avoidance"]["enabled"] is False  # workflow runs are not moderated
