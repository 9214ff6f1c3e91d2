"""A plugin of our own (plugins/everything) calls back into the host: models, tools, apps, storage; every answer
must validate in the real SDK inside the plugin process."""

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
from openify.tools.base import JsonMessage, TextMessage, ToolCall, ToolError, ToolMessage, ToolRef
from openify.tools.dify_plugins.installer import InstalledPlugin
from tests.conftest import settings_with_providers, stand_in_provider
from tests.fake_llm.server import FakeLLM
from tests.tools.dify_plugins.conftest import adopt

# Real plugin processes (and, for the first test of a session, installing them) on a shared 2-core machine.
pytestmark = pytest.mark.timeout(300)

PROBE = ToolRef("plugin", "openify-tests/everything/everything", "probe")
CALL = ToolCall(user_id="u1", app_id=None)


@pytest.fixture
async def host(
    tmp_path: Path, database_url: str, fake_llm: FakeLLM, installed_plugins: dict[str, InstalledPlugin]
) -> AsyncIterator[Services]:
    models: dict[str, dict[str, object]] = {
        "fake-model": {},
        "emb-1": {"model_type": "text-embedding"},
        "rerank-1": {"model_type": "rerank"},
    }
    settings = settings_with_providers(
        tmp_path, database_url, {"stand": stand_in_provider(fake_llm.base_url, **models)}, default="stand"
    )
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        adopt(services, installed_plugins["everything"], installed_plugins["maths"])
        yield services


async def probe(services: Services, action: str, **args: Any) -> list[ToolMessage]:
    params = {"action": action, "args": json.dumps(args, ensure_ascii=False)}
    return [m async for m in services.tools.call(PROBE, params, CALL)]


def only_json(messages: list[ToolMessage]) -> Any:
    found = [m.data for m in messages if isinstance(m, JsonMessage)]
    assert len(found) == 1, messages
    return found[0]


async def test_llm_stream_with_tool_calls_reaches_the_plugin_as_sdk_chunks(host: Services, fake_llm: FakeLLM) -> None:
    fake_llm.reply("你好，世界")
    got = only_json(await probe(host, "llm", provider="stand", model="fake-model", query="说你好"))
    assert got["text"] == "你好，世界"
    assert got["total_tokens"] > 0 and got["currency"] == "USD"  # usage validated as the SDK's LLMUsage
    assert fake_llm.received[-1]["messages"][-1]["content"] == "说你好"

    fake_llm.reply_tool_call("lookup", {"q": "x"})
    got = only_json(await probe(host, "llm", provider="stand", model="fake-model", query="q", tools=["lookup"]))
    assert got["tool_calls"] == ["lookup"]
    assert [t["function"]["name"] for t in fake_llm.received[-1]["tools"]] == ["lookup"]


async def test_embedding_rerank_tool_and_storage(host: Services, fake_llm: FakeLLM) -> None:
    got = only_json(await probe(host, "embed", provider="stand", model="emb-1", texts=["一", "two"]))
    assert got["count"] == 2 and got["dims"] > 0

    got = only_json(await probe(host, "rerank", provider="stand", model="rerank-1", query="cat", docs=["dog", "cat"]))
    assert sorted(got["order"]) == [0, 1]

    # A plugin calls another plugin's tool back through the host's tool manager.
    inner = await probe(host, "tool", provider="maths", tool="eval_expression", parameters={"expression": "2**10"})
    assert inner == [TextMessage('inner: The result of the expression "2**10" is 1024')]

    first = only_json(await probe(host, "storage", key="k", value="值"))
    assert first == {"existed": False, "value": "值", "after": True}
    second = only_json(await probe(host, "storage", key="k", value="v2", delete=True))
    assert second == {"existed": True, "value": "v2", "after": False}


async def test_a_call_the_host_cannot_serve_fails_at_once(host: Services, fake_llm: FakeLLM) -> None:
    # The model fails: the host answers the SDK's error line, and the plugin's call raises at once instead of
    # waiting out its 30 s invocation timeout.
    fake_llm.fail_next(500)
    started = time.monotonic()
    with pytest.raises(ToolError):
        await probe(host, "llm", provider="stand", model="fake-model", query="q")
    with pytest.raises(ToolError, match=r"not found|App"):
        await probe(host, "app", app_id="00000000-0000-0000-0000-000000000000", inputs={})
    assert time.monotonic() - started < 10
