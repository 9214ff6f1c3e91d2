"""Real Dify exports that use only built-in nodes run to completion against the stand-in model server."""

from __future__ import annotations

import json

from openify.engine.events import IterationCompleted, TextChunk
from openify.engine.ports import Ports
from openify.engine.runner import SystemInputs
from openify.providers.manager import ProviderManager
from openify.security.ssrf import GuardedHttpClient
from openify.settings import HttpNodeSettings
from tests.engine.conftest import SANDBOX, MemoryHistory, MemoryKnowledge, load_dsl, run_dsl
from tests.fake_llm.server import FakeLLM


async def test_01_start_llm_end(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("my-seo-slug")
    dsl = load_dsl("01-")
    start = dsl["workflow"]["graph"]["nodes"][0]["data"]["variables"]
    inputs = {v["variable"]: "How to bake bread" for v in start}
    out = await run_dsl(dsl, inputs, ports=Ports(models=models))
    assert out.finished.status == "succeeded", out.finished.error
    assert list(out.outputs.values()) == ["my-seo-slug"]
    assert "How to bake bread" in json.dumps(fake_llm.received[-1]["messages"], ensure_ascii=False)


async def test_02_translation_branches_on_empty_country(fake_llm: FakeLLM, models: ProviderManager) -> None:
    inputs = {"target_lang": "French", "source_text": "Hello", "source_lang": "English"}
    fake_llm.reply("Bonjour", "suggest: fine", "Bonjour!")
    out = await run_dsl(load_dsl("02-"), inputs, ports=Ports(models=models))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"output": "Bonjour!"}
    assert "1721118559807" in out.nodes and "1721118668192" not in out.nodes  # country empty → true branch
    assert "suggest: fine" in json.dumps(fake_llm.received[-1]["messages"], ensure_ascii=False)
    fake_llm.reply("Salut", "local: ok", "Salut!")
    out = await run_dsl(load_dsl("02-"), {**inputs, "country": "Canada"}, ports=Ports(models=models))
    assert "1721118668192" in out.nodes and out.outputs == {"output": "Salut!"}


async def test_05_iteration_over_code_output_with_llm_inside(fake_llm: FakeLLM, models: ProviderManager) -> None:
    outline = [{"chapter": "第1章", "title": "入门", "contents": ["1.1 安装", "1.2 运行"]}]
    fake_llm.reply("```json\n" + json.dumps(outline, ensure_ascii=False) + "\n```", "正文一", "正文二")
    out = await run_dsl(load_dsl("05-"), {"course_name": "Python"}, ports=Ports(models=models, sandbox=SANDBOX))
    assert out.finished.status == "succeeded", out.finished.error
    course = out.outputs["course"]
    assert [c["course"] for c in course] == ["正文一", "正文二"]
    assert course[1]["info"] == {"chapter": "第1章", "title": "入门", "subtitle": "1.2 运行"}
    assert "入门 1.2 运行" in fake_llm.received[-1]["messages"][-1]["content"]


async def test_07_outline_sections_final_editor(fake_llm: FakeLLM, models: ProviderManager) -> None:
    outline = {"title": "T", "sections": [{"section_number": 1, "title": "A"}, {"section_number": 2, "title": "B"}]}
    fake_llm.reply("好的：" + json.dumps(outline, ensure_ascii=False), "section A", "section B", "final text")
    inputs = {"topic": "AI", "target_length": "1000", "style": "科技创新", "target_audience": "dev"}
    out = await run_dsl(load_dsl("07-"), inputs, ports=Ports(models=models, sandbox=SANDBOX))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"final_article": "final text", "sections": ["section A", "section B"]}
    assert out.of(IterationCompleted)[0].steps == 2


async def test_13_code_imports_jieba_in_sandbox() -> None:
    out = await run_dsl(load_dsl("13-"), system=SystemInputs(query="我爱北京天安门", conversation_id="c"))
    assert out.finished.status == "succeeded", out.finished.error
    assert "北京" in out.finished.answer


async def test_15_chat_with_memory(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("你好呀")
    ports = Ports(models=models, history=MemoryHistory([("早", "早上好")]))
    out = await run_dsl(load_dsl("15-"), ports=ports, system=SystemInputs(query="你好", conversation_id="c"))
    assert out.finished.answer == "你好呀"
    assert [m["content"] for m in fake_llm.received[-1]["messages"]] == ["你是一个小助手", "早", "早上好", "你好"]
    assert len(out.of(TextChunk)) >= 1


async def test_18_knowledge_then_llm_with_encrypted_dataset_ids(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("依据第三条。")
    knowledge = MemoryKnowledge([{"content": "第三条：……", "title": "law", "metadata": {"score": 0.8}}])
    ports = Ports(models=models, knowledge=knowledge)
    out = await run_dsl(load_dsl("18-"), ports=ports, system=SystemInputs(query="违法占地", conversation_id="c"))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.finished.answer == "依据第三条。"
    assert knowledge.calls == [(["4pGVzYRn13tg0b9mnZq190bzFoXrM+1dLZPbwp7DsXiYfXIfjxsm4U35uVe3ob1w"], "违法占地")]
    assert "第三条" in json.dumps(fake_llm.received[-1]["messages"], ensure_ascii=False)


async def test_04_classifier_legacy_if_else_and_knowledge(fake_llm: FakeLLM, models: ProviderManager) -> None:
    dsl = load_dsl("04-")
    start = next(n for n in dsl["workflow"]["graph"]["nodes"] if n["data"]["type"] == "start")["data"]
    inputs = {v["variable"]: "如何安装?" for v in start["variables"]}
    knowledge = MemoryKnowledge([{"content": "用 docker 安装", "title": "doc", "metadata": {}}])
    fake_llm.reply("需要查询", '{"category_id": "1", "category_name": "安装"}', "用 docker。")
    out = await run_dsl(dsl, inputs, ports=Ports(models=models, knowledge=knowledge))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.nodes["1720795163496"].outputs["class_id"] == "1"
    assert out.outputs == {"output": "用 docker。"}  # End 2, after the class-1 branch
    assert knowledge.calls == [(["8c4620fa-15d7-464f-9cb9-561f1a59eb3f"], "如何安装?")]
    assert "用 docker 安装" in json.dumps(fake_llm.received[-1]["messages"], ensure_ascii=False)  # context
    fake_llm.reply("询问结束")
    out = await run_dsl(dsl, inputs, ports=Ports(models=models, knowledge=knowledge))
    assert out.outputs == {"output": "你的问题 如何安装? 不属于dify文档的相关内容，请重新提问。"}


async def test_06_http_to_private_sandbox_host_is_refused(fake_llm: FakeLLM, models: ProviderManager) -> None:
    dsl = load_dsl("06-")
    http_id = next(n["id"] for n in dsl["workflow"]["graph"]["nodes"] if n["data"]["type"] == "http-request")
    start = next(n for n in dsl["workflow"]["graph"]["nodes"] if n["data"]["type"] == "start")["data"]
    inputs = {v["variable"]: "print(1)" for v in start["variables"] if v["type"] != "file"}
    fake_llm.reply("print(1)")
    ports = Ports(models=models, sandbox=SANDBOX, http=GuardedHttpClient(HttpNodeSettings()))
    out = await run_dsl(dsl, inputs, ports=ports)
    if http_id in out.nodes:
        assert out.nodes[http_id].status == "failed"
    assert out.finished.status == "failed"
