"""Agent-chat: function calling and ReAct, agent_thought streaming, built-in tools (current_time, http_request)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import blocking, streaming
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit, import_app
from tests.fake_llm.server import FakeLLM

settings = chatkit.settings  # fixture


def _tool(name: str, **params: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "provider_type": "builtin",
        "provider_id": name,
        "provider_name": name,
        "tool_name": name,
        "tool_label": name.replace("_", " ").title(),
        "tool_parameters": params,
    }


def _agent(services: Services, strategy: str, *tools: dict[str, Any]) -> AppKit:
    mode = {"enabled": True, "strategy": strategy, "max_iteration": 5, "tools": list(tools)}
    return import_app(services, chatkit.chat_dsl("agent-chat", agent_mode=mode))


async def test_function_calling_streams_thoughts_and_runs_the_tool(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = _agent(services, "function_call", _tool("current_time", timezone=""), _tool("http_request"))
    fake_llm.reply_tool_call("current_time", {"timezone": "UTC"})
    fake_llm.reply("It is late.")
    events = await streaming(client, kit, query="what time is it?", auto_generate_name=False)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "agent_thought" and kinds[-1] == "message_end"
    thoughts = [e for e in events if e["event"] == "agent_thought"]
    assert [t["position"] for t in thoughts] == [1, 1, 1, 2, 2]
    assert len({t["id"] for t in thoughts[:3]}) == 1  # the same step re-sent as it fills in
    step = thoughts[2]
    assert set(step) >= {
        "id",
        "position",
        "thought",
        "observation",
        "tool",
        "tool_labels",
        "tool_input",
        "message_files",
        "task_id",
        "conversation_id",
        "message_id",
        "created_at",
    }
    assert step["tool"] == "current_time" and json.loads(step["tool_input"]) == {"current_time": {"timezone": "UTC"}}
    observation = json.loads(step["observation"])["current_time"]
    assert "UTC" in observation and observation[:2] == "20"
    assert "".join(e["answer"] for e in events if e["event"] == "agent_message") == "It is late."
    assert "message" not in kinds

    first, second = fake_llm.received[-2], fake_llm.received[-1]
    assert {t["function"]["name"] for t in first["tools"]} == {"current_time", "http_request"}
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["content"] == observation

    q = {"conversation_id": events[0]["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=kit.auth, params=q)).json()["data"][0]
    assert stored["answer"] == "It is late."
    assert [t["tool"] for t in stored["agent_thoughts"]] == ["current_time", ""]
    assert stored["agent_thoughts"][0]["observation"] == step["observation"]


async def test_http_tool_refuses_internal_addresses(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = _agent(services, "function_call", _tool("http_request"))
    fake_llm.reply_tool_call("http_request", {"url": "http://127.0.0.1:5432/", "method": "GET"})
    fake_llm.reply("I could not reach it.")
    events = await streaming(client, kit, query="fetch the db", auto_generate_name=False)
    step = next(e for e in events if e["event"] == "agent_thought" and e["observation"])
    observation = json.loads(step["observation"])["http_request"]
    assert observation.startswith("error:")
    assert events[-1]["event"] == "message_end"


async def test_react_for_models_without_function_calling(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = _agent(services, "react", _tool("current_time"))
    fake_llm.reply(
        'Thought: I need the time.\nAction:\n```\n{"action": "current_time", "action_input": {"timezone": "UTC"}}\n```',
        'Thought: I know.\nAction:\n```\n{"action": "Final Answer", "action_input": "Now is the time."}\n```',
    )
    events = await streaming(client, kit, query="time?", auto_generate_name=False)
    assert "".join(e["answer"] for e in events if e["event"] == "agent_message").endswith("Now is the time.")
    tools = [e for e in events if e["event"] == "agent_thought" and e["tool"]]
    assert tools[-1]["tool"] == "current_time" and "UTC" in json.loads(tools[-1]["observation"])["current_time"]
    first, second = fake_llm.received[-2], fake_llm.received[-1]
    assert "tools" not in first and "current_time" in first["messages"][0]["content"]
    assert "Observation:" in second["messages"][-1]["content"]
    assert first.get("stop") == ["Observation"]


async def test_agent_chat_refuses_blocking(client: httpx.AsyncClient, services: Services) -> None:
    kit = _agent(services, "function_call", _tool("current_time"))
    assert_dify_error(await blocking(client, kit, query="x"), 400, "invalid_param")


def _source_tool(provider: str, tool: str, **params: Any) -> dict[str, Any]:
    """An agent_mode tool entry as Dify exports it (provider id, tool name, form values in tool_parameters)."""
    return {
        "enabled": True,
        "provider_type": "builtin",
        "provider_id": provider,
        "provider_name": provider,
        "tool_name": tool,
        "tool_label": tool,
        "tool_parameters": params,
    }


async def test_tool_source_tools_are_offered_with_their_llm_schema_and_fixed_form_values(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = _agent(
        services,
        "function_call",
        _source_tool("time", "weekday", year="", month="", day=""),
        _source_tool("time", "current_time", timezone="Asia/Shanghai", format="%Y年"),
    )
    fake_llm.reply_tool_call("weekday", {"year": "2024", "month": 2, "day": 29})
    fake_llm.reply_tool_call("current_time", {})
    fake_llm.reply("星期四。")
    events = await streaming(client, kit, query="2024年2月29日是星期几？", auto_generate_name=False)
    assert events[-1]["event"] == "message_end", events[-1]
    offered = {t["function"]["name"]: t["function"]["parameters"] for t in fake_llm.received[0]["tools"]}
    assert set(offered["weekday"]["properties"]) == {"year", "month", "day"}
    assert offered["weekday"]["properties"]["year"]["type"] == "number"
    assert offered["current_time"]["properties"] == {}  # its form parameters are the app's, not the model's
    steps = [e for e in events if e["event"] == "agent_thought" and e["observation"]]
    assert json.loads(steps[0]["observation"]) == {"weekday": "February 29, 2024 is Thursday."}
    now = json.loads(steps[1]["observation"])["current_time"]
    assert now.endswith("年") and now[:2] == "20"  # the app's format and timezone were used
    assert fake_llm.received[1]["messages"][-1]["content"] == "February 29, 2024 is Thursday."


async def test_a_failing_source_tool_hands_its_error_back_to_the_model(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = _agent(services, "function_call", _source_tool("time", "timezone_conversion"))
    fake_llm.reply_tool_call(
        "timezone_conversion",
        {"current_time": "2024-01-01 00:00:00", "current_timezone": "Mars/Olympus", "target_timezone": "UTC"},
    )
    fake_llm.reply("那个时区不存在。")
    events = await streaming(client, kit, query="convert", auto_generate_name=False)
    step = next(e for e in events if e["event"] == "agent_thought" and e["observation"])
    observation = json.loads(step["observation"])["timezone_conversion"]
    assert observation == "tool invoke error: Invalid timezone: 'Mars/Olympus'"
    assert fake_llm.received[-1]["messages"][-1]["content"] == observation
    assert "".join(e["answer"] for e in events if e["event"] == "agent_message") == "那个时区不存在。"


async def test_react_calls_a_tool_source_tool(client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM) -> None:
    kit = _agent(services, "react", _source_tool("time", "weekday"))
    fake_llm.reply(
        'Thought: compute.\nAction:\n```\n{"action": "weekday", "action_input": '
        '{"year": 2025, "month": 1, "day": 1}}\n```',
        'Thought: done.\nAction:\n```\n{"action": "Final Answer", "action_input": "周三"}\n```',
    )
    events = await streaming(client, kit, query="2025-01-01?", auto_generate_name=False)
    step = next(e for e in events if e["event"] == "agent_thought" and e["observation"])
    assert json.loads(step["observation"]) == {"weekday": "January 1, 2025 is Wednesday."}
    assert "weekday" in fake_llm.received[0]["messages"][0]["content"]
    assert "".join(e["answer"] for e in events if e["event"] == "agent_message").endswith("周三")
