"""The official tool plugins (maths, json_process, regex) run for real through the `plugin` tool source."""

from __future__ import annotations

import json

import pytest

from openify.services.container import Services
from openify.tools.base import TextMessage, ToolCall, ToolMessage, ToolRef
from openify.tools.dify_plugins.installer import InstalledPlugin
from tests.tools.dify_plugins.conftest import adopt

# Real plugin processes (and, for the first test of a session, installing them) on a shared 2-core machine.
pytestmark = pytest.mark.timeout(300)

CALL = ToolCall(user_id="u1")


async def run(services: Services, ref: ToolRef, params: dict[str, object]) -> list[ToolMessage]:
    return [m async for m in services.tools.call(ref, params, CALL)]


async def test_official_tool_plugins_run(services: Services, installed_plugins: dict[str, InstalledPlugin]) -> None:
    adopt(services, installed_plugins["maths"], installed_plugins["json_process"], installed_plugins["regex"])

    maths = await run(services, ToolRef("plugin", "langgenius/maths/maths", "eval_expression"), {"expression": "6*7"})
    assert maths == [TextMessage('The result of the expression "6*7" is 42')]

    # A bare builtin name reaches the plugin, as Dify maps it; CJK passes through unchanged.
    doc = json.dumps({"城市": {"名字": "北京"}}, ensure_ascii=False)
    parsed = await run(
        services,
        ToolRef("builtin", "json_process", "parse"),
        {"content": doc, "json_filter": "城市.名字", "ensure_ascii": False},
    )
    assert [m for m in parsed if isinstance(m, TextMessage)] == [TextMessage("北京")]

    found = await run(
        services,
        ToolRef("plugin", "langgenius/regex/regex", "regex_extract"),
        {"content": "a1b22c333", "expression": r"\d+"},
    )
    assert any("22" in str(m) for m in found), found


async def test_providers_are_listed_from_their_declarations(
    services: Services, installed_plugins: dict[str, InstalledPlugin]
) -> None:
    adopt(services, installed_plugins["json_process"])
    source = services.tools.source("plugin")
    assert source is not None
    providers = {p.id: p for p in await source.providers()}
    json_process = providers["langgenius/json_process/json_process"]
    assert {t.name for t in json_process.tools} == {"parse", "json_delete", "json_replace", "json_insert"}
    assert json_process.label["zh_Hans"] == "JSON 处理"
    schema = json_process.find_tool("parse").llm_schema()  # type: ignore[union-attr]
    assert "content" in schema["properties"]
