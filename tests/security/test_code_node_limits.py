"""Code-node output limits come from SandboxSettings (OPENIFY_SANDBOX__MAX_*) alone: changing one changes the run."""

from __future__ import annotations

from typing import Any

import pytest

from openify.engine.ports import Ports
from openify.security.sandbox import Sandbox
from openify.settings import SandboxSettings, Settings
from tests.engine.conftest import run_dsl


def _code_workflow(code: str, outputs: dict[str, str]) -> dict[str, Any]:
    node = {
        "type": "code",
        "title": "N",
        "code_language": "python3",
        "code": code,
        "variables": [],
        "outputs": {name: {"type": kind} for name, kind in outputs.items()},
    }
    end = {"type": "end", "title": "E", "outputs": [{"variable": k, "value_selector": ["n", k]} for k in outputs]}
    return {
        "app": {"mode": "workflow"},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    {"id": "n", "data": node},
                    {"id": "e", "data": end},
                ],
                "edges": [{"source": "s", "target": "n"}, {"source": "n", "target": "e"}],
            }
        },
    }


CASES = [
    # (output type, returned value, setting that refuses it, message)
    ("array[string]", "['a', 'b', 'c']", {"max_string_array_length": 2}, "must be less than 2 elements"),
    ("array[number]", "[1, 2, 3]", {"max_number_array_length": 2}, "must be less than 2 elements"),
    ("array[object]", "[{}, {}, {}]", {"max_object_array_length": 2}, "must be less than 2 elements"),
    ("array[boolean]", "[True, False, True]", {"max_boolean_array_length": 2}, "must be less than 2 elements"),
    ("string", "'长长长长长'", {"max_string_length": 4}, "must be less than 4 characters"),
    ("number", "101", {"max_number": 100}, "it must be between"),
    ("number", "-101", {"min_number": -100}, "it must be between -100 and"),
    ("object", "{'a': {'b': {}}}", {"max_depth": 2}, "Depth limit 2 reached"),
]


@pytest.mark.parametrize(("kind", "value", "limit", "message"), CASES)
async def test_changing_a_setting_changes_what_a_code_node_may_return(
    kind: str, value: str, limit: dict[str, int], message: str
) -> None:
    dsl = _code_workflow(f"def main():\n    return {{'out': {value}}}\n", {"out": kind})
    default = await run_dsl(dsl, ports=Ports(sandbox=Sandbox(SandboxSettings())))
    assert default.finished.status == "succeeded", default.finished.error
    limited = await run_dsl(dsl, ports=Ports(sandbox=Sandbox(SandboxSettings.model_validate(limit))))
    assert limited.finished.status == "failed" and message in str(limited.finished.error), limited.finished.error


def test_the_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENIFY_SANDBOX__MAX_STRING_ARRAY_LENGTH", "3")
    monkeypatch.setenv("OPENIFY_SANDBOX__ALLOW_WEAK", "true")
    sandbox = Settings(_env_file=None).sandbox  # type: ignore[call-arg]
    assert sandbox.max_string_array_length == 3 and sandbox.allow_weak is True


async def test_float_precision_follows_the_setting() -> None:
    dsl = _code_workflow("def main():\n    return {'out': 0.123456789}\n", {"out": "number"})
    out = await run_dsl(dsl, ports=Ports(sandbox=Sandbox(SandboxSettings())))
    assert out.finished.status == "succeeded" and out.outputs["out"] == 0.123456789
    out = await run_dsl(dsl, ports=Ports(sandbox=Sandbox(SandboxSettings(max_precision=3))))
    assert out.finished.status == "failed" and "too high precision" in str(out.finished.error), out.finished.error
