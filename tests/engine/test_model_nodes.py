"""Question classifier, parameter extractor and LLM prompt forms against the real provider layer."""

from __future__ import annotations

from typing import Any

from openify.engine.events import NodeStarted
from openify.engine.ports import Ports
from openify.engine.runner import SystemInputs
from openify.providers.manager import ProviderManager
from tests.engine.conftest import file_value, load_dsl, node_data, run_dsl
from tests.fake_llm.server import FakeLLM


async def test_classifier_branches_on_class_id_and_extractor_uses_tool_call(
    fake_llm: FakeLLM, models: ProviderManager
) -> None:
    fake_llm.reply('```json\n{"keywords": ["Kyoto"], "category_id": "1720796069925", "category_name": "travel"}\n```')
    fake_llm.reply_tool_call("extract_parameters", {"city": "Kyoto", "days": 3})
    out = await run_dsl(load_dsl("classify_extract.yml"), {"q": "3 days in Kyoto"}, ports=Ports(models=models))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"class": "travel", "city": "Kyoto", "days": 3, "ok": 1, "other": None}
    assert "other" not in {e.node_id for e in out.of(NodeStarted)}
    classify_prompt = fake_llm.received[0]["messages"][-1]["content"]
    assert "3 days in Kyoto" in classify_prompt and "travel" in classify_prompt and "Pick one." in classify_prompt
    tools = fake_llm.received[1]["tools"]
    assert tools[0]["function"]["name"] == "extract_parameters"
    assert tools[0]["function"]["parameters"]["properties"]["mode"]["enum"] == ["train", "plane"]
    assert tools[0]["function"]["parameters"]["required"] == ["city"]


async def test_classifier_unknown_reply_picks_first_class(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("I cannot decide")
    out = await run_dsl(load_dsl("classify_extract.yml"), {"q": "hmm"}, ports=Ports(models=models))
    assert out.outputs["class"] == "weather" and out.outputs["other"] == "weather"
    assert out.nodes["qc"].outputs["class_id"] == "1"


async def test_extractor_prompt_mode_and_invalid_reply(fake_llm: FakeLLM, models: ProviderManager) -> None:
    dsl = load_dsl("classify_extract.yml")
    node_data(dsl, "pe")["reasoning_mode"] = "prompt"
    fake_llm.reply('{"category_id": "1720796069925"}', 'Sure: {"city": "Oslo", "days": "2", "mode": "bus"}')
    out = await run_dsl(dsl, {"q": "Oslo for 2 days by bus"}, ports=Ports(models=models))
    assert out.outputs["city"] == "Oslo" and out.outputs["days"] == 2
    pe = out.nodes["pe"].outputs
    assert pe["__is_success"] == 0 and "mode" in pe["__reason"]  # option not allowed
    assert "tools" not in fake_llm.received[1]
    assert "JSON schema" in fake_llm.received[1]["messages"][0]["content"]
    fake_llm.reply('{"category_id": "1720796069925"}', "no json here")
    out = await run_dsl(dsl, {"q": "?"}, ports=Ports(models=models))
    assert out.outputs["ok"] == 0 and out.outputs["city"] == "" and out.outputs["days"] == 0


def _llm_workflow(llm: dict[str, Any]) -> dict[str, Any]:
    return {
        "app": {"mode": "workflow"},
        "workflow": {
            "graph": {
                "nodes": [
                    {
                        "id": "s",
                        "data": {
                            "type": "start",
                            "title": "S",
                            "variables": [{"variable": "topic", "label": "T", "type": "text-input", "required": True}],
                        },
                    },
                    {
                        "id": "llm",
                        "data": {
                            "type": "llm",
                            "title": "LLM",
                            "context": {"enabled": False},
                            "model": {
                                "provider": "openai",
                                "name": "m",
                                "mode": "chat",
                                "completion_params": {"stop": ["END"]},
                            },
                            **llm,
                        },
                    },
                    {
                        "id": "e",
                        "data": {
                            "type": "end",
                            "title": "E",
                            "outputs": [
                                {"variable": "text", "value_selector": ["llm", "text"]},
                                {"variable": "data", "value_selector": ["llm", "structured_output"]},
                            ],
                        },
                    },
                ],
                "edges": [{"source": "s", "target": "llm"}, {"source": "llm", "target": "e"}],
            }
        },
    }


async def test_llm_jinja2_prompt_and_structured_output(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply('{"title": "Owls", "n": 2}')
    dsl = _llm_workflow(
        {
            "prompt_template": [
                {
                    "role": "user",
                    "edition_type": "jinja2",
                    "text": "",
                    "jinja2_text": "Write about {{ t | upper }}{% for i in range(2) %}!{% endfor %}",
                }
            ],
            "prompt_config": {"jinja2_variables": [{"variable": "t", "value_selector": ["s", "topic"]}]},
            "structured_output_enabled": True,
            "structured_output": {"schema": {"type": "object", "properties": {"title": {"type": "string"}}}},
        }
    )
    out = await run_dsl(dsl, {"topic": "owls"}, ports=Ports(models=models))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs["data"] == {"title": "Owls", "n": 2}
    sent = fake_llm.received[-1]
    assert sent["messages"] == [{"role": "user", "content": "Write about OWLS!!"}]
    assert sent["stop"] == ["END"]
    assert sent["response_format"]["type"] == "json_schema"


async def test_llm_completion_prompt_with_histories(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("done")
    dsl = _llm_workflow({"prompt_template": {"text": "Topic: {{#s.topic#}} <|endoftext|>"}})
    dsl["workflow"]["graph"]["nodes"][1]["data"]["model"]["mode"] = "completion"
    out = await run_dsl(dsl, {"topic": "owls"}, ports=Ports(models=models), system=SystemInputs())
    assert out.outputs["text"] == "done"
    sent = fake_llm.received[-1]
    text = sent.get("prompt") or sent["messages"][-1]["content"]
    assert text.strip() == "Topic: owls"  # special tokens stripped


async def test_image_variable_in_prompt_becomes_image_part(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.reply("a cat")
    dsl = _llm_workflow({"prompt_template": [{"role": "user", "text": "Describe {{#s.pic#}}please"}]})
    dsl["workflow"]["graph"]["nodes"][0]["data"]["variables"].append(
        {"variable": "pic", "label": "P", "type": "file", "required": True}
    )
    pic = file_value("cat.png", kind="image", mime_type="image/png")
    out = await run_dsl(dsl, {"topic": "x", "pic": pic}, ports=Ports(models=models))
    assert out.outputs["text"] == "a cat"
    content = fake_llm.received[-1]["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Describe please"}
    assert content[1]["image_url"]["url"] == "http://files.local/cat.png"
