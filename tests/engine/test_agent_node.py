"""The agent node against the real tool manager, with test agent strategies entering through the registries
(the official `langgenius/agent` plugin is covered with the plugin host)."""

from __future__ import annotations

from typing import Any

from openify.engine.events import AgentLog
from openify.engine.ports import Ports
from openify.engine.runner import SystemInputs
from tests.engine.conftest import MemoryHistory, load_dsl, run_dsl
from tests.engine.test_tool_node import workflow
from tests.tools.kit import STRATEGY_CALLS, tool_manager, tool_registries


def agent_data(**extra: Any) -> dict[str, Any]:
    model = {"provider": "langgenius/openai/openai", "model": "gpt-4o", "mode": "chat", "completion_params": {}}
    tools = [
        {
            "enabled": True,
            "type": "builtin",
            "provider_name": "echo",  # bare: langgenius/echo/echo
            "tool_name": "shout",
            "parameters": {"words": {"auto": 1, "value": None}, "times": {"auto": 0, "value": 2}},
            "settings": {"loud": {"value": True}},
        },
        {"enabled": False, "type": "builtin", "provider_name": "time", "tool_name": "weekday"},
        {"enabled": True, "type": "builtin", "provider_name": "time", "tool_name": "current_time", "settings": {}},
    ]
    return {
        "agent_strategy_provider_name": "langgenius/agent/agent",
        "agent_strategy_name": "echo",
        "agent_parameters": {
            "model": {"type": "constant", "value": model},
            "tools": {"type": "constant", "value": tools},
            "query": {"type": "constant", "value": "{{#start.q#}}"},
            "instruction": {"type": "mixed", "value": "be brief, {{#start.z#}}"},
            "maximum_iterations": {"type": "constant", "value": "4"},
        },
        **extra,
    }


async def test_agent_node_builds_dify_parameters_and_streams_logs_and_text() -> None:
    STRATEGY_CALLS.clear()
    history = MemoryHistory([("早上好", "你好")])
    ports = Ports(tools=tool_manager(), history=history)
    dsl = workflow(agent_data(memory={"window": {"enabled": True, "size": 3}}), mode="advanced-chat", node_type="agent")
    out = await run_dsl(dsl, {"q": "几点了", "z": "请"}, ports=ports, system=SystemInputs(conversation_id="c1"))
    assert out.finished.status == "succeeded", out.finished.error
    params = STRATEGY_CALLS[-1]
    assert params["query"] == "几点了" and params["instruction"] == "be brief, 请"
    assert params["maximum_iterations"] == 4
    assert params["model"]["model"] == "gpt-4o"
    assert params["model"]["history_prompt_messages"] == [
        {"role": "user", "content": "早上好", "name": None},
        {"role": "assistant", "content": "你好", "name": None},
    ]
    assert history.asked == [3]
    shout, clock = params["tools"]  # the disabled tool is left out
    assert shout["identity"]["provider"] == "langgenius/echo/echo" and shout["identity"]["name"] == "shout"
    assert shout["runtime_parameters"] == {"loud": True, "times": 2}
    assert {p["name"]: p["form"] for p in shout["parameters"]}["times"] == "form"  # manual input: fixed by the app
    assert shout["provider_type"] == "builtin"  # as Dify names plugin tools to strategies
    assert clock["identity"]["provider"] == "time" and clock["provider_type"] == "builtin"
    logs = out.of(AgentLog)
    assert [(log.id, log.status) for log in logs] == [("round1", "start"), ("round1", "success")]
    node = out.nodes["tool"]
    assert all(log.node_execution_id == node.id and log.node_id == "tool" for log in logs)
    assert out.text == "answer to 几点了"
    assert node.outputs["usage"]["total_tokens"] == 3
    assert node.execution_metadata["total_tokens"] == 3
    assert [e["status"] for e in node.execution_metadata["agent_log"]] == ["success"]


async def test_missing_strategy_fails_naming_the_plugin_then_follows_the_error_strategy() -> None:
    ports = Ports(tools=tool_manager(tool_registries(strategies=False)))
    data = agent_data(plugin_unique_identifier="langgenius/agent:0.0.9@abc")
    out = await run_dsl(workflow(data, node_type="agent"), {"q": "x"}, ports=ports)
    assert out.finished.status == "failed"
    assert "openify plugin install langgenius/agent:0.0.9@abc" in (out.nodes["tool"].error or "")
    data["error_strategy"] = "default-value"
    data["default_value"] = [{"key": "text", "type": "string", "value": "no agent"}]
    out = await run_dsl(workflow(data, node_type="agent"), {"q": "x"}, ports=ports)
    assert out.finished.status == "partial-succeeded" and out.outputs["text"] == "no agent"


async def test_a_missing_tool_of_the_agent_fails_naming_it() -> None:
    ports = Ports(tools=tool_manager(tool_registries(plugin=False)))
    out = await run_dsl(workflow(agent_data(), node_type="agent"), {"q": "x"}, ports=ports)
    assert out.finished.status == "failed"
    assert "langgenius/echo" in (out.nodes["tool"].error or "")


async def test_tools_dsl_runs_a_tool_into_an_agent_and_a_missing_plugin_down_its_fail_branch() -> None:
    out = await run_dsl(load_dsl("tools.yml"), {"day": "8"}, ports=Ports(tools=tool_manager()))
    assert out.finished.status == "partial-succeeded", out.finished.error
    assert out.outputs == {"answer": "answer to March 8, 2024 is Friday.", "search": "ToolProviderNotFoundError"}
