"""The tool node against the real tool manager: the builtin time tools, and a test `plugin` source entering
through the registries (Dify plugins themselves are covered with the plugin host)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from openify.engine.events import NodeFinished, NodeRetry, TextChunk
from openify.engine.ports import Ports
from openify.engine.runner import SystemInputs
from tests.engine.conftest import SANDBOX, DirFiles, run_dsl
from tests.tools.kit import EchoSource, tool_manager, tool_registries


def workflow(
    tool_data: dict[str, Any], *, mode: str = "workflow", answer: str = "{{#tool.text#}}", node_type: str = "tool"
) -> dict[str, Any]:
    """start -> the node (id `tool`) -> end (workflow) or answer (chatflow)."""
    tool_node = {"id": "tool", "data": {"type": node_type, "title": "Tool", **tool_data}}
    end: dict[str, Any]
    if mode == "workflow":
        end = {
            "id": "end",
            "data": {
                "type": "end",
                "title": "End",
                "outputs": [
                    {"variable": "text", "value_selector": ["tool", "text"]},
                    {"variable": "json", "value_selector": ["tool", "json"]},
                    {"variable": "error", "value_selector": ["tool", "error_message"]},
                ],
            },
        }
    else:
        end = {"id": "end", "data": {"type": "answer", "title": "Answer", "answer": answer}}
    start_vars = [{"variable": v, "label": v, "type": "text-input", "required": False} for v in ("q", "z")]
    return {
        "version": "0.3.1",
        "kind": "app",
        "app": {"name": "T", "mode": mode},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "start", "data": {"type": "start", "title": "Start", "variables": start_vars}},
                    tool_node,
                    end,
                ],
                "edges": [{"source": "start", "target": "tool"}, {"source": "tool", "target": "end"}],
            }
        },
    }


def ports(tmp_path: Path | None = None) -> Ports:
    return Ports(sandbox=SANDBOX, tools=tool_manager(), files=DirFiles(tmp_path) if tmp_path else None)


async def test_builtin_time_tools_take_variable_mixed_and_constant_inputs() -> None:
    data = {
        "provider_id": "time",
        "provider_type": "builtin",
        "provider_name": "time",
        "tool_name": "timezone_conversion",
        "tool_configurations": {},
        "tool_parameters": {
            "current_time": {"type": "variable", "value": ["start", "q"]},
            "current_timezone": {"type": "constant", "value": "Asia/Shanghai"},
            "target_timezone": {"type": "mixed", "value": "Asia/{{#start.z#}}"},
        },
    }
    out = await run_dsl(workflow(data), {"q": "2024-01-01 09:00:00", "z": "Tokyo"}, ports=ports())
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs["text"] == "2024-01-01 10:00:00"
    assert out.outputs["json"] == [{"data": []}]
    finished = out.nodes["tool"]
    assert finished.execution_metadata["tool_info"] == {
        "provider_type": "builtin",
        "provider_id": "time",
        "plugin_unique_identifier": None,
    }
    assert finished.inputs["current_time"] == "2024-01-01 09:00:00"


async def test_numbers_are_cast_to_declared_types_weekday() -> None:
    data = {
        "provider_id": "langgenius/time/time",  # the id exports made after the plugin move carry
        "provider_type": "builtin",
        "tool_name": "weekday",
        "tool_configurations": {},
        "tool_parameters": {
            "year": {"type": "mixed", "value": "2024"},
            "month": {"type": "constant", "value": "2"},
            "day": {"type": "constant", "value": 29},
        },
    }
    out = await run_dsl(workflow(data), ports=ports())
    assert out.outputs["text"] == "February 29, 2024 is Thursday."


async def test_plugin_tool_text_streams_to_the_answer_as_it_arrives() -> None:
    EchoSource.calls.clear()
    data = {
        "provider_id": "echo",  # a bare name: Dify maps it to langgenius/echo/echo
        "provider_type": "builtin",
        "provider_name": "echo",
        "tool_name": "shout",
        "tool_node_version": "2",
        "tool_configurations": {
            "times": {"type": "constant", "value": "2"},
            "loud": {"type": "mixed", "value": "{{#start.z#}}"},
        },
        "tool_parameters": {"words": {"type": "mixed", "value": "你好 {{#start.q#}}"}},
    }
    out = await run_dsl(
        workflow(data, mode="advanced-chat", answer="A: {{#tool.text#}}"), {"q": "world", "z": "true"}, ports=ports()
    )
    assert out.finished.status == "succeeded", out.finished.error
    assert EchoSource.calls[-1] == ("shout", {"words": "你好 world", "times": 2, "loud": True})
    texts = [e.text for e in out.of(TextChunk)]
    assert "".join(texts) == "A: 你好 WORLD! 你好 WORLD! "
    assert len(texts) >= 3  # piece by piece, not one block at the end


async def test_legacy_tool_configurations_are_plain_values() -> None:
    EchoSource.calls.clear()
    data = {
        "provider_id": "langgenius/echo/echo",
        "provider_type": "plugin",
        "tool_name": "shout",
        "tool_configurations": {"times": 3, "loud": None},
        "tool_parameters": {"words": {"type": "constant", "value": "x"}},
    }
    out = await run_dsl(workflow(data), ports=ports())
    assert out.outputs["text"] == "X X X "
    assert EchoSource.calls[-1] == ("shout", {"words": "x", "times": 3, "loud": False})


async def test_json_files_and_tool_variables_are_outputs(tmp_path: Path) -> None:
    data = {
        "provider_id": "langgenius/echo/echo",
        "provider_type": "plugin",
        "tool_name": "card",
        "tool_configurations": {},
        "tool_parameters": {"name": {"type": "constant", "value": "卡"}},
    }
    out = await run_dsl(workflow(data), ports=ports(tmp_path))
    outputs = out.nodes["tool"].outputs
    assert outputs["json"] == [{"name": "卡", "名字": "卡片"}]
    assert [f["filename"] for f in outputs["files"]] == ["card.txt"]
    assert (tmp_path / "card.txt").read_bytes() == b"card"
    assert outputs["greeting"] == "hi "
    assert outputs["stream_var"] == "ab"


async def test_a_failing_tool_follows_retry_and_fail_branch() -> None:
    EchoSource.calls.clear()
    data = {
        "provider_id": "langgenius/echo/echo",
        "provider_type": "plugin",
        "provider_name": "echo",
        "tool_name": "fail",
        "tool_configurations": {},
        "tool_parameters": {"why": {"type": "constant", "value": "因为"}},
        "retry_config": {"retry_enabled": True, "max_retries": 1, "retry_interval": 1},
        "error_strategy": "default-value",
        "default_value": [{"key": "text", "type": "string", "value": "fallback"}],
    }
    out = await run_dsl(workflow(data), ports=ports())
    assert len(EchoSource.calls) == 2
    assert len(out.of(NodeRetry)) == 1
    assert out.finished.status == "partial-succeeded"
    assert out.outputs["text"] == "fallback"
    assert out.outputs["error"] == "Failed to invoke tool echo: echo refuses: 因为"


async def test_a_missing_plugin_fails_naming_it() -> None:
    data = {
        "provider_id": "tavily",
        "provider_type": "builtin",
        "tool_name": "tavily_search",
        "tool_configurations": {},
        "tool_parameters": {},
    }
    out = await run_dsl(workflow(data), ports=Ports(tools=tool_manager(tool_registries(plugin=False))))
    assert out.finished.status == "failed"
    error = out.nodes["tool"].error or ""
    assert "langgenius/tavily/tavily" in error and "openify plugin install langgenius/tavily" in error
    data["error_strategy"] = "fail-branch"
    out = await run_dsl(workflow(data), ports=Ports(tools=tool_manager(tool_registries(plugin=False))))
    assert out.nodes["tool"].status == "exception"


async def test_shared_export_12_webscraper_nodes_reach_the_ssrf_guard() -> None:
    """Export 12's webscraper (builtin, legacy configurations with a null) runs; a private URL is refused."""
    dsl = yaml.safe_load(
        (Path(__file__).resolve().parents[3] / "shared/data/dsl")
        .joinpath("12-chatflow-0.1.2-simple-kimi-files-list-operator-zh.yml")
        .read_text()
    )
    node = next(n["data"] for n in dsl["workflow"]["graph"]["nodes"] if n["data"].get("tool_name") == "webscraper")
    data = {k: v for k, v in node.items() if k not in ("type", "title")}
    data["tool_parameters"] = {"url": {"type": "mixed", "value": "{{#start.q#}}"}}
    out = await run_dsl(workflow(data), {"q": "http://127.0.0.1:9/"}, ports=ports())
    finished = out.nodes["tool"]
    assert isinstance(finished, NodeFinished) and finished.status == "failed"
    assert "not allowed" in (finished.error or "")


async def test_tool_node_system_inputs_reach_the_tool_call() -> None:
    data = {
        "provider_id": "time",
        "provider_type": "builtin",
        "tool_name": "current_time",
        "tool_configurations": {"timezone": "Asia/Shanghai", "format": "%Y"},
        "tool_parameters": {},
    }
    out = await run_dsl(workflow(data), ports=ports(), system=SystemInputs(user_id="u1"))
    assert out.outputs["text"].isdigit() and len(out.outputs["text"]) == 4


async def test_malformed_tool_nodes_fail_with_a_clear_error() -> None:
    out = await run_dsl(workflow({"provider_type": "builtin", "tool_parameters": ["not", "a", "map"]}), ports=ports())
    assert out.nodes["tool"].error == "The tool node names no provider_id or tool_name."
    data: dict[str, Any] = {"provider_id": "time", "provider_type": "teleport", "tool_name": "weekday"}
    out = await run_dsl(workflow(data), ports=ports())
    assert out.nodes["tool"].error == "Unknown tool provider type 'teleport'"
    data = {"provider_id": "time", "provider_type": "builtin", "tool_name": "weekday", "tool_parameters": [1]}
    out = await run_dsl(workflow(data), ports=ports())
    assert out.nodes["tool"].outputs["text"].startswith("Invalid date")  # no parameters given, no crash
