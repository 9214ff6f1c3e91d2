"""The agent node and tool nodes with real Dify plugins: the official `langgenius/agent` strategy
(function_calling) calling the official maths tool plugin, against the stand-in model making tool calls."""

from __future__ import annotations

import json
from typing import Any

import httpx

from openify.services.container import Services
from openify.tools.dify_plugins.installer import InstalledPlugin
from tests.api import chatkit
from tests.api.workflow_kit import dsl, end, sse_events, start, text_input
from tests.conftest import import_app
from tests.fake_llm.server import FakeLLM
from tests.tools.dify_plugins.conftest import adopt, installed_plugins

settings = chatkit.settings  # fixture: every model name reaches the stand-in
__all__ = ["installed_plugins"]  # fixture, session-wide: the plugins are installed once


def agent_node(strategy: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    model = {"provider": "langgenius/openai/openai", "model": "gpt-4o", "mode": "chat", "completion_params": {}}
    return {
        "id": "agent",
        "type": "agent",
        "agent_strategy_provider_name": "langgenius/agent/agent",
        "agent_strategy_name": strategy,
        "agent_strategy_label": strategy,
        "agent_parameters": {
            "model": {"type": "constant", "value": model},
            "tools": {"type": "constant", "value": tools},
            "instruction": {"type": "constant", "value": "你是计算助手。"},
            "query": {"type": "mixed", "value": "{{#start.q#}}"},
            "maximum_iterations": {"type": "constant", "value": 3},
        },
    }


MATHS = {
    "enabled": True,
    "type": "plugin",
    "provider_name": "langgenius/maths/maths",
    "tool_name": "eval_expression",
    "parameters": {"expression": {"auto": 1, "value": None}},
    "settings": {},
}


async def _run(client: httpx.AsyncClient, auth: dict[str, str], inputs: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"inputs": inputs, "user": "u1", "response_mode": "streaming"}
    r = await client.post("/v1/workflows/run", headers=auth, json=body, timeout=120)
    assert r.status_code == 200, r.text
    return sse_events(r.text)


async def test_official_agent_strategy_calls_a_tool_plugin_through_the_stand_in_model(
    client: httpx.AsyncClient,
    services: Services,
    fake_llm: FakeLLM,
    installed_plugins: dict[str, InstalledPlugin],
) -> None:
    adopt(services, installed_plugins["agent"], installed_plugins["maths"])
    kit = import_app(
        services,
        dsl(
            [start(text_input("q")), agent_node("function_calling", [MATHS]), end(answer=["agent", "text"])],
            [("start", "agent"), ("agent", "end")],
        ),
    )
    fake_llm.reply_tool_call("eval_expression", {"expression": "6*7"})
    fake_llm.reply("答案是 42。")
    events = await _run(client, kit.auth, {"q": "六乘七等于几？"})
    node = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "agent")
    assert node["status"] == "succeeded", node["error"]
    # the strategy itself separates rounds with a newline, as in Dify
    assert node["outputs"]["text"].strip() == "答案是 42。"
    assert events[-1]["data"]["outputs"]["answer"].strip() == "答案是 42。"

    first, second = fake_llm.received[-2], fake_llm.received[-1]
    assert [t["function"]["name"] for t in first["tools"]] == ["eval_expression"]
    assert first["messages"][0]["content"].startswith("你是计算助手。")
    tool_result = second["messages"][-1]
    assert tool_result["role"] == "tool" and "42" in tool_result["content"]

    logs = [e["data"] for e in events if e["event"] == "agent_log"]
    assert logs and all(log["node_execution_id"] == node["id"] and log["node_id"] == "agent" for log in logs)
    assert any("eval_expression" in json.dumps(log, ensure_ascii=False) for log in logs)
    assert node["execution_metadata"]["agent_log"]


async def test_tool_node_runs_a_plugin_tool_named_by_its_bare_builtin_name(
    client: httpx.AsyncClient, services: Services, installed_plugins: dict[str, InstalledPlugin]
) -> None:
    adopt(services, installed_plugins["json_process"])
    tool = {
        "id": "parse",
        "type": "tool",
        "provider_id": "json_process",  # an old builtin name: Dify maps it to langgenius/json_process/json_process
        "provider_type": "builtin",
        "provider_name": "json_process",
        "tool_name": "parse",
        "tool_label": "JSON Parse",
        "tool_configurations": {"ensure_ascii": False},
        "tool_parameters": {
            "content": {"type": "mixed", "value": "{{#start.q#}}"},
            "json_filter": {"type": "constant", "value": "城市.名字"},
        },
    }
    kit = import_app(
        services,
        dsl([start(text_input("q")), tool, end(text=["parse", "text"])], [("start", "parse"), ("parse", "end")]),
    )
    events = await _run(client, kit.auth, {"q": json.dumps({"城市": {"名字": "北京"}}, ensure_ascii=False)})
    node = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "parse")
    assert node["status"] == "succeeded", node["error"]
    assert node["outputs"]["text"] == "北京"
    assert node["execution_metadata"]["tool_info"]["provider_id"] == "json_process"


async def test_official_react_strategy_runs_a_tool_plugin(
    client: httpx.AsyncClient,
    services: Services,
    fake_llm: FakeLLM,
    installed_plugins: dict[str, InstalledPlugin],
) -> None:
    adopt(services, installed_plugins["agent"], installed_plugins["maths"])
    nodes = [start(text_input("q")), agent_node("ReAct", [MATHS]), end(answer=["agent", "text"])]
    kit = import_app(services, dsl(nodes, [("start", "agent"), ("agent", "end")]))
    fake_llm.reply(
        'Thought: 需要计算。\nAction:\n```\n{"action": "eval_expression", "action_input": {"expression": "6*7"}}\n```',
        'Thought: 我知道了。\nAction:\n```\n{"action": "Final Answer", "action_input": "四十二"}\n```',
    )
    events = await _run(client, kit.auth, {"q": "六乘七？"})
    node = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "agent")
    assert node["status"] == "succeeded", node["error"]
    assert "四十二" in node["outputs"]["text"]
    assert "42" in json.dumps(fake_llm.received[-1]["messages"], ensure_ascii=False)  # the observation went back


async def test_agent_chat_app_offers_an_installed_plugin_tool(
    client: httpx.AsyncClient,
    services: Services,
    fake_llm: FakeLLM,
    installed_plugins: dict[str, InstalledPlugin],
) -> None:
    adopt(services, installed_plugins["maths"])
    tool = {
        "enabled": True,
        "provider_type": "builtin",  # Dify's agent apps name plugin tools `builtin`
        "provider_id": "langgenius/maths/maths",
        "provider_name": "langgenius/maths/maths",
        "tool_name": "eval_expression",
        "tool_label": "Eval",
        "tool_parameters": {"expression": ""},
    }
    mode = {"enabled": True, "strategy": "function_call", "max_iteration": 3, "tools": [tool]}
    kit = import_app(services, chatkit.chat_dsl("agent-chat", agent_mode=mode))
    fake_llm.reply_tool_call("eval_expression", {"expression": "6*7"})
    fake_llm.reply("42")
    events = await chatkit.streaming(client, kit, query="6*7?", auto_generate_name=False)
    assert events[-1]["event"] == "message_end", events[-1]
    offered = fake_llm.received[-2]["tools"][0]["function"]
    assert offered["name"] == "eval_expression" and "expression" in offered["parameters"]["properties"]
    step = next(e for e in events if e["event"] == "agent_thought" and e["observation"])
    assert json.loads(step["observation"]) == {"eval_expression": 'The result of the expression "6*7" is 42'}
