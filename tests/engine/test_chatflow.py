"""Chatflows: conversation variables across turns, answers streaming in order, LLM memory/context/vision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openify.engine.events import NodeStarted, TextChunk
from openify.engine.ports import Ports
from openify.engine.runner import SystemInputs
from openify.plugins import build_registries
from openify.providers.config import build_providers
from openify.providers.manager import ProviderManager
from openify.settings import Settings
from openify.tokens import count_tokens
from tests.engine.conftest import (
    MemoryConversationVariables,
    MemoryHistory,
    MemoryKnowledge,
    file_value,
    load_dsl,
    run_dsl,
)
from tests.fake_llm.server import FakeLLM


async def test_assigner_operations_persist_between_turns() -> None:
    store = MemoryConversationVariables()
    ports = Ports(conversation_variables=store)
    out = await run_dsl(
        load_dsl("chat_assigner.yml"), ports=ports, system=SystemInputs(query="hello", conversation_id="c1")
    )
    assert out.finished.status == "succeeded", out.finished.error
    assert out.finished.answer == "hello|1|6.0|- hello"
    assert store.stored["c1"] == {
        "title": "hello",
        "turns": 1,
        "score": 6.0,
        "flag": True,
        "meta": {"b": 2},
        "tags": ["y"],
        "nums": [1, 1],
        "scratch": "",
        "log": ["hello"],
    }
    # the answer waited for both assigners: no text before v1 finished
    order = [
        ("chunk" if isinstance(e, TextChunk) else e.node_id)
        for e in out.events
        if isinstance(e, TextChunk | NodeStarted)
    ]
    assert order.index("chunk") > order.index("v1")
    out = await run_dsl(
        load_dsl("chat_assigner.yml"), ports=ports, system=SystemInputs(query="bye", conversation_id="c1")
    )
    assert out.finished.answer == "bye|2|3.0|- hello\n- bye"
    assert store.stored["c1"]["tags"] == []


async def test_assigner_type_error_fails_node() -> None:
    dsl = load_dsl("chat_assigner.yml")
    items: list[dict[str, Any]] = dsl["workflow"]["graph"]["nodes"][1]["data"]["items"]
    items.append(
        {"variable_selector": ["conversation", "title"], "input_type": "constant", "operation": "+=", "value": 1}
    )
    out = await run_dsl(
        dsl,
        ports=Ports(conversation_variables=MemoryConversationVariables()),
        system=SystemInputs(query="q", conversation_id="c2"),
    )
    assert out.finished.status == "failed"
    assert out.finished.error == "Operation += needs a number variable."


async def test_llm_context_memory_vision_and_streaming(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("Paris is the capital.")
    records = [{"content": "Paris is in France.", "title": "geo.txt", "metadata": {"dataset_id": "ds-1", "score": 0.9}}]
    knowledge = MemoryKnowledge(records)
    history = MemoryHistory([("hi", "hello!"), ("old", "older"), ("2+2?", "4")])
    ports = Ports(models=models, knowledge=knowledge, history=history)
    image = file_value("cat.png", kind="image", mime_type="image/png")
    image["remote_url"] = "https://img.example/cat.png"
    out = await run_dsl(
        load_dsl("chat_llm.yml"),
        {"tone": "warm"},
        ports=ports,
        system=SystemInputs(query="Capital of France?", conversation_id="c", files=[image]),
    )
    assert out.finished.status == "succeeded", out.finished.error
    assert out.finished.answer == "A: Paris is the capital. (warm)"
    chunks = [e for e in out.events if isinstance(e, TextChunk)]
    assert len([c for c in chunks if c.from_variable_selector == ("llm", "text")]) > 1  # streamed token by token
    assert chunks[0].text == "A: " and chunks[-1].text == ")"
    # the answer streamed while the LLM ran: first LLM chunk comes before the LLM node finished
    first_llm_chunk = next(
        i for i, e in enumerate(out.events) if isinstance(e, TextChunk) and e.from_variable_selector == ("llm", "text")
    )
    llm_finished = next(
        i for i, e in enumerate(out.events) if getattr(e, "node_id", None) == "llm" and hasattr(e, "outputs")
    )
    assert first_llm_chunk < llm_finished
    assert knowledge.calls == [(["ds-1"], "Capital of France?")]
    sent = fake_llm.received[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be warm. Use this:\nParis is in France."}
    assert [m["content"] for m in sent[1:5]] == ["old", "older", "2+2?", "4"]  # window of 2 turns
    assert history.asked == [2]
    last = sent[-1]
    assert last["role"] == "user"
    assert last["content"][0] == {"type": "text", "text": "Q: Capital of France?"}
    assert last["content"][1]["image_url"]["url"] == "https://img.example/cat.png"
    assert fake_llm.received[-1]["temperature"] == 0.1
    llm = out.nodes["llm"]
    assert llm.outputs["text"] == "Paris is the capital."
    assert llm.outputs["usage"]["total_tokens"] == llm.execution_metadata["total_tokens"] > 0
    assert out.finished.total_tokens == llm.execution_metadata["total_tokens"]
    kr = out.nodes["kr"].outputs["result"][0]
    assert kr["metadata"]["_source"] == "knowledge" and kr["metadata"]["position"] == 1


async def test_llm_without_model_provider_fails_cleanly() -> None:
    out = await run_dsl(
        load_dsl("chat_llm.yml"),
        ports=Ports(knowledge=MemoryKnowledge([])),
        system=SystemInputs(query="x", conversation_id="c"),
    )
    assert out.finished.status == "failed"
    assert out.nodes["llm"].status == "failed"
    assert "models" in (out.finished.error or "")


async def test_assigner_refuses_value_of_wrong_type() -> None:
    dsl = load_dsl("chat_assigner.yml")
    items: list[dict[str, Any]] = dsl["workflow"]["graph"]["nodes"][1]["data"]["items"]
    items[:] = [
        {
            "variable_selector": ["conversation", "nums"],
            "input_type": "variable",
            "operation": "append",
            "value": ["sys", "query"],
        }
    ]
    out = await run_dsl(
        dsl,
        ports=Ports(conversation_variables=MemoryConversationVariables()),
        system=SystemInputs(query="not a number", conversation_id="c3"),
    )
    assert out.finished.status == "failed"
    assert out.finished.error == "Value of type list cannot be assigned to array[number] variable conversation.nums."


async def test_separated_reasoning_is_kept_out_of_the_answer(fake_llm: FakeLLM, models: ProviderManager) -> None:
    dsl = load_dsl("chat_llm.yml")
    dsl["workflow"]["graph"]["nodes"][2]["data"]["reasoning_format"] = "separated"
    fake_llm.reply_with_reasoning("Let me think about France.", "Paris.")
    ports = Ports(models=models, knowledge=MemoryKnowledge([]))
    out = await run_dsl(dsl, ports=ports, system=SystemInputs(query="Capital?", conversation_id="c"))
    assert out.finished.answer == "A: Paris. (dry)"
    llm = out.nodes["llm"].outputs
    assert llm["text"] == "Paris." and llm["reasoning_content"] == "Let me think about France."
    # tagged (the default) keeps the reasoning in the text, as Dify does
    dsl["workflow"]["graph"]["nodes"][2]["data"]["reasoning_format"] = "tagged"
    fake_llm.reply_with_reasoning("Hmm.", "Paris.")
    out = await run_dsl(dsl, ports=ports, system=SystemInputs(query="Capital?", conversation_id="c"))
    assert "<think>" in out.finished.answer and out.finished.answer.endswith("Paris. (dry)")


async def test_parallel_answers_stream_one_after_the_other(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.token_latency_s = 0.01

    def llm(node_id: str, prompt: str) -> dict[str, Any]:
        return {
            "id": node_id,
            "data": {
                "type": "llm",
                "title": node_id,
                "context": {"enabled": False},
                "model": {"provider": "openai", "name": "m", "mode": "chat"},
                "prompt_template": [{"role": "user", "text": prompt}],
            },
        }

    dsl = {
        "app": {"mode": "advanced-chat"},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    llm("l1", "first"),
                    llm("l2", "second"),
                    {"id": "a1", "data": {"type": "answer", "title": "A1", "answer": "A1:{{#l1.text#}}\n"}},
                    {"id": "a2", "data": {"type": "answer", "title": "A2", "answer": "A2:{{#l2.text#}}"}},
                ],
                "edges": [
                    {"source": "s", "target": "l1"},
                    {"source": "s", "target": "l2"},
                    {"source": "l1", "target": "a1"},
                    {"source": "l2", "target": "a2"},
                ],
            }
        },
    }
    out = await run_dsl(dsl, ports=Ports(models=models), system=SystemInputs(query="q", conversation_id="c"))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.finished.answer == "A1:echo: first\nA2:echo: second"
    sources = [e.node_id for e in out.of(TextChunk)]
    assert sources == sorted(sources)  # every a1 chunk before any a2 chunk


async def test_two_answers_showing_one_llm_text_both_stream_it(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("hello there")
    dsl = {
        "app": {"mode": "advanced-chat"},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    {
                        "id": "l",
                        "data": {
                            "type": "llm",
                            "title": "L",
                            "context": {"enabled": False},
                            "model": {"provider": "openai", "name": "m", "mode": "chat"},
                            "prompt_template": [{"role": "user", "text": "hi"}],
                        },
                    },
                    {"id": "a1", "data": {"type": "answer", "title": "A1", "answer": "[{{#l.text#}}]"}},
                    {"id": "a2", "data": {"type": "answer", "title": "A2", "answer": "({{#l.text#}})"}},
                ],
                "edges": [
                    {"source": "s", "target": "l"},
                    {"source": "l", "target": "a1"},
                    {"source": "a1", "target": "a2"},
                ],
            }
        },
    }
    out = await run_dsl(dsl, ports=Ports(models=models), system=SystemInputs(query="q", conversation_id="c"))
    assert out.finished.answer == "[hello there](hello there)"


async def test_llm_memory_keeps_the_newest_messages_that_fit_the_models_context(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    # Dify's TokenBufferMemory: the model's context size less max_tokens is what memory may take; the oldest
    # messages go first, one at a time.
    fake_llm.reply("ok")
    long_question = "请总结这段很长的历史记录。" + "苹果香蕉橙子" * 60
    long_answer = "an older answer " * 20
    assert count_tokens(long_question) > 300 and count_tokens(long_answer) + 10 < 300  # the test's premise
    providers = build_providers(
        {
            "local": {
                "type": "openai_compatible",
                "base_url": fake_llm.base_url,
                "api_key": "sk-test",
                "max_retries": 0,
                "models": {"gpt-4o-mini": {"context_size": 1000}},
            }
        },
        default="local",
    )
    models = ProviderManager(Settings(_env_file=None, data_dir=tmp_path), build_registries(), providers)  # type: ignore[call-arg]
    dsl = load_dsl("chat_llm.yml")
    llm_node = next(n for n in dsl["workflow"]["graph"]["nodes"] if n["id"] == "llm")
    llm_node["data"]["model"]["completion_params"]["max_tokens"] = 700  # leaves 300 tokens for memory
    history = MemoryHistory([("hi", "hello!"), (long_question, long_answer), ("2+2?", "4")])
    ports = Ports(models=models, knowledge=MemoryKnowledge([]), history=history)
    try:
        out = await run_dsl(dsl, ports=ports, system=SystemInputs(query="Next?", conversation_id="c"))
    finally:
        await models.aclose()
    assert out.finished.status == "succeeded", out.finished.error
    sent = [m["content"] for m in fake_llm.received[-1]["messages"][1:-1]]
    assert sent == [long_answer, "2+2?", "4"]  # the window's 4 messages, less the one that did not fit
