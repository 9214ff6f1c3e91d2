"""The official agent strategies (cot_agent: function_calling, ReAct) run against the stand-in model, calling a
real plugin tool (maths) back through the host."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from openify.app import create_app
from openify.services.container import Services
from openify.tools.base import LogMessage, TextMessage, ToolCall, ToolMessage
from openify.tools.dify_plugins.installer import InstalledPlugin
from tests.conftest import settings_with_providers, stand_in_provider
from tests.fake_llm.server import FakeLLM
from tests.tools.dify_plugins.conftest import adopt

# Real plugin processes (and, for the first test of a session, installing them) on a shared 2-core machine.
pytestmark = pytest.mark.timeout(300)

MATHS_TOOL = {
    "identity": {
        "author": "langgenius",
        "name": "eval_expression",
        "label": {"en_US": "Evaluate Math Expression", "zh_Hans": "计算数学表达式"},
        "provider": "langgenius/maths/maths",
    },
    "parameters": [
        {
            "name": "expression",
            "type": "string",
            "form": "llm",
            "required": True,
            "label": {"en_US": "Math Expression"},
            "human_description": {"en_US": "Math Expression"},
            "llm_description": "the expression",
        }
    ],
    "description": {"human": {"en_US": "Evaluates maths"}, "llm": "A tool for evaluating an math expression."},
    "provider_type": "builtin",
    "runtime_parameters": {},
}


def strategy_params(query: str) -> dict[str, Any]:
    """As Dify's agent node builds `agent_strategy_params` (api/core/workflow/nodes/agent/agent_node.py)."""
    model = {"provider": "stand", "model": "fake-model", "model_type": "llm", "mode": "chat", "completion_params": {}}
    return {
        "model": {**model, "history_prompt_messages": []},
        "tools": [MATHS_TOOL],
        "instruction": "你是数学助手。",
        "query": query,
        "maximum_iterations": 3,
    }


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is tested here is the plugin processes, not storage (test_backwards covers both)."""
    return f"sqlite:///{tmp_path / 'openify.db'}"


@pytest.fixture
async def host(
    tmp_path: Path, database_url: str, fake_llm: FakeLLM, installed_plugins: dict[str, InstalledPlugin]
) -> AsyncIterator[Services]:
    settings = settings_with_providers(
        tmp_path, database_url, {"stand": stand_in_provider(fake_llm.base_url, **{"fake-model": {}})}, default="stand"
    )
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        adopt(services, installed_plugins["agent"], installed_plugins["maths"])
        yield services


async def run(services: Services, strategy: str, query: str) -> list[ToolMessage]:
    call = ToolCall(user_id="u1")
    return [
        m
        async for m in services.tools.invoke_strategy("langgenius/agent/agent", strategy, strategy_params(query), call)
    ]


async def test_function_calling_calls_the_tool_then_answers(host: Services, fake_llm: FakeLLM) -> None:
    declared = await host.tools.find_strategy("langgenius/agent/agent", "function_calling")
    assert declared is not None and {p.name for p in declared.parameters} >= {"model", "tools", "query"}

    fake_llm.reply_tool_call("eval_expression", {"expression": "6*7"})
    fake_llm.reply("答案是 42。")
    started = time.monotonic()
    messages = await run(host, "function_calling", "六乘以七是多少？")
    elapsed = time.monotonic() - started

    answer = "".join(m.text for m in messages if isinstance(m, TextMessage))
    assert answer.strip() == "答案是 42。"
    logs = [m for m in messages if isinstance(m, LogMessage)]
    calls = [m for m in logs if m.label == "CALL eval_expression" and m.status == "success"]
    assert calls, [m.label for m in logs]
    assert "42" in str(calls[-1].data)  # the real maths plugin answered through the host
    # The model got the tool's result in its second round.
    tool_turn = fake_llm.received[-1]["messages"][-1]
    assert tool_turn["role"] == "tool" and "42" in tool_turn["content"]
    assert elapsed < 8, elapsed  # cold starts of two plugins included

    # Warm: each run is two model rounds and a tool call, all backwards invocations answered at once. None of
    # them may lose the SDK's race and stall (the protocol digest's ~10 s rounds).
    rounds = []
    for _ in range(6):
        fake_llm.reply_tool_call("eval_expression", {"expression": "6*7"})
        fake_llm.reply("42")
        started = time.monotonic()
        messages = await run(host, "function_calling", "6*7?")
        rounds.append(time.monotonic() - started)
        assert "".join(m.text for m in messages if isinstance(m, TextMessage)).strip() == "42"
    print("function_calling warm runs (s):", [round(r, 3) for r in rounds])  # noqa: T201
    assert max(rounds) < 2.0, rounds


async def test_react_parses_the_action_calls_the_tool_and_answers(host: Services, fake_llm: FakeLLM) -> None:
    fake_llm.reply('Thought: 需要计算。\nAction: {"action": "eval_expression", "action_input": {"expression": "6*7"}}')
    fake_llm.reply("Thought: 我知道了。\nFinalAnswer: 六乘以七等于 42")
    messages = await run(host, "ReAct", "六乘以七是多少？")

    answer = "".join(m.text for m in messages if isinstance(m, TextMessage))
    assert "42" in answer, answer
    logs = [m for m in messages if isinstance(m, LogMessage)]
    assert any(m.label == "CALL eval_expression" and m.status == "success" and "42" in str(m.data) for m in logs), [
        (m.label, m.status) for m in logs
    ]
    # The second round's prompt carries the tool's observation, and "Observation" stops the model as in Dify.
    second = fake_llm.received[-1]
    assert "42" in json.dumps(second["messages"], ensure_ascii=False)
    assert "Observation" in (second.get("stop") or [])
