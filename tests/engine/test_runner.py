"""The engine through its public surface: DSL in, typed events out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from openify.engine.events import (
    IterationCompleted,
    IterationNext,
    IterationStarted,
    LoopCompleted,
    NodeFinished,
    NodeRetry,
    NodeStarted,
    WorkflowFinished,
    WorkflowStarted,
)
from openify.engine.graph import parse_graph
from openify.engine.ports import Ports
from openify.engine.runner import RunLimits, WorkflowRunner
from openify.providers.manager import ProviderManager
from tests.engine.conftest import REGISTRIES, SANDBOX, load_dsl, node_data, run_dsl
from tests.fake_llm.server import FakeLLM


@pytest.mark.parametrize(
    ("n", "s", "branch"), [(11, "", "big 11"), (5, "", "mid"), (1, "oh hi", "mid"), (1, "", "small")]
)
async def test_if_else_cases_or_join_and_parallel_join(n: int, s: str, branch: str) -> None:
    out = await run_dsl(load_dsl("branches.yml"), {"n": n, "s": s})
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"branch": branch, "both": "LR"}
    ran = {e.node_id for e in out.of(NodeStarted)}
    assert len(ran & {"big", "mid", "small"}) == 1  # the other branches were skipped
    assert [e.node_id for e in out.of(NodeStarted)].count("agg") == 1  # the join ran once
    assert out.nodes["route"].outputs["selected_case_id"] == {"big 11": "true", "mid": "mid-case"}.get(branch, "false")


async def test_events_carry_difys_fields_in_order() -> None:
    out = await run_dsl(load_dsl("branches.yml"), {"n": 1})
    assert isinstance(out.events[0], WorkflowStarted)
    assert isinstance(out.events[-1], WorkflowFinished)
    started = out.of(NodeStarted)
    assert started[0].node_id == "start" and started[0].predecessor_node_id is None
    assert [e.index for e in started] == sorted(e.index for e in started)
    f = out.nodes["small"]
    assert (f.node_type, f.title, f.status, f.outputs) == (
        "template-transform",
        "Small",
        "succeeded",
        {"output": "small"},
    )
    assert f.elapsed_time >= 0 and f.finished_at >= f.created_at
    w = out.finished
    assert w.total_steps == len(started) and w.exceptions_count == 0 and w.error is None
    for ev in started:  # every started node finishes
        assert ev.node_id in out.nodes


async def test_missing_required_input_fails_the_run() -> None:
    out = await run_dsl(load_dsl("branches.yml"), {})
    assert out.finished.status == "failed"
    assert out.finished.error == "n is required in input form"
    assert out.nodes["start"].status == "failed"


async def test_parallel_branches_run_concurrently() -> None:
    slow = {
        "type": "code",
        "title": "Slow",
        "code_language": "python3",
        "code": "import time\ndef main() -> dict:\n    time.sleep(0.6)\n    return {'v': 1}\n",
        "variables": [],
        "outputs": {"v": {"type": "number"}},
    }
    dsl = {
        "app": {"mode": "workflow"},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    {"id": "a", "data": {**slow, "title": "A"}},
                    {"id": "b", "data": {**slow, "title": "B"}},
                    {
                        "id": "e",
                        "data": {
                            "type": "end",
                            "title": "E",
                            "outputs": [
                                {"variable": "a", "value_selector": ["a", "v"]},
                                {"variable": "b", "value_selector": ["b", "v"]},
                            ],
                        },
                    },
                ],
                "edges": [
                    {"source": "s", "target": "a"},
                    {"source": "s", "target": "b"},
                    {"source": "a", "target": "e"},
                    {"source": "b", "target": "e"},
                ],
            }
        },
    }
    t0 = time.perf_counter()
    out = await run_dsl(dsl)
    elapsed = time.perf_counter() - t0
    assert out.outputs == {"a": 1, "b": 1}
    assert elapsed < 1.1, f"branches ran one after the other ({elapsed:.2f}s)"


async def test_fail_branch_with_retries_and_default_value() -> None:
    out = await run_dsl(load_dsl("errors.yml"), {"ok": 0})
    assert out.finished.status == "partial-succeeded"
    assert out.finished.exceptions_count == 2
    retries = out.of(NodeRetry)
    assert [r.retry_index for r in retries] == [0, 1] and all(r.node_id == "risky" for r in retries)
    assert "boom" in retries[0].error
    risky = out.nodes["risky"]
    assert risky.status == "exception" and "boom" in (risky.error or "")
    assert risky.execution_metadata["error_strategy"] == "fail-branch"
    assert out.outputs["result"].startswith("failed: ") and "boom" in out.outputs["result"]
    assert "on_ok" not in out.nodes
    assert out.outputs["items"] == ["d1", "d2"]
    assert out.outputs["fallback_error"] == "OutputValidationError"
    assert out.nodes["fallback"].status == "exception"


async def test_fail_branch_success_takes_source_edge() -> None:
    out = await run_dsl(load_dsl("errors.yml"), {"ok": 1})
    assert out.outputs["result"] == "ok: fine"
    assert "on_fail" not in out.nodes and not out.of(NodeRetry)


async def test_node_failure_without_strategy_fails_run() -> None:
    dsl = load_dsl("errors.yml")
    del node_data(dsl, "risky")["error_strategy"]
    node_data(dsl, "risky")["retry_config"] = {"retry_enabled": False}
    out = await run_dsl(dsl, {"ok": 0})
    assert out.finished.status == "failed"
    assert "boom" in (out.finished.error or "")
    assert out.nodes["risky"].status == "failed"
    assert "end" not in out.nodes


@pytest.mark.parametrize(
    ("parallel", "mode", "status", "output"),
    [
        (False, "terminated", "failed", None),
        (True, "terminated", "failed", None),
        (False, "continue-on-error", "succeeded", [2, 0, 4, 1, None, 8, 3, 10, 4]),
        (True, "continue-on-error", "succeeded", [2, 0, 4, 1, None, 8, 3, 10, 4]),
        (False, "remove-abnormal-output", "succeeded", [2, 0, 4, 1, 8, 3, 10, 4]),
        (True, "remove-abnormal-output", "succeeded", [2, 0, 4, 1, 8, 3, 10, 4]),
    ],
)
async def test_iteration_modes(parallel: bool, mode: str, status: str, output: Any) -> None:
    dsl = load_dsl("iteration.yml")
    node_data(dsl, "it").update(is_parallel=parallel, error_handle_mode=mode)
    out = await run_dsl(dsl)
    assert out.finished.status == status, out.finished.error
    if output is None:
        assert "three" in (out.finished.error or "")
        assert out.of(IterationCompleted)[0].status == "failed"
    else:
        # lists flatten; a None left by continue-on-error keeps the elements from being all lists
        expected = output if mode == "remove-abnormal-output" else [[2, 0], [4, 1], None, [8, 3], [10, 4]]
        assert out.outputs["output"] == expected
    started = out.of(IterationStarted)[0]
    assert started.metadata == {"iterator_length": 5} and started.id == "it"
    durations = out.of(IterationCompleted)[0].execution_metadata["iteration_duration_map"]
    assert set(durations) <= {"0", "1", "2", "3", "4"} and "0" in durations
    inner = [e for e in out.of(NodeFinished) if e.node_id == "double"]
    assert all(e.iteration_id == "it" for e in inner)
    assert {e.execution_metadata["iteration_index"] for e in inner} <= {0, 1, 2, 3, 4}
    assert not [e for e in out.of(NodeStarted) if e.node_id == "it"]  # containers emit their own events


async def test_iteration_parallel_runs_items_concurrently() -> None:
    dsl = load_dsl("iteration.yml")
    inner = node_data(dsl, "double")
    inner["code"] = "import time\ndef main(x: int, i: int) -> dict:\n    time.sleep(0.4)\n    return {'out': [x]}\n"
    node_data(dsl, "it").update(is_parallel=True, parallel_nums=5)
    t0 = time.perf_counter()
    out = await run_dsl(dsl)
    assert out.outputs["output"] == [1, 2, 3, 4, 5]  # item order kept
    assert time.perf_counter() - t0 < 1.5
    assert [e.index for e in out.of(IterationNext)] and len(out.of(IterationNext)) == 5


async def test_loop_variables_loop_end_and_break() -> None:
    out = await run_dsl(load_dsl("loop.yml"), {"stop_at": 3})
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"count": 3, "log": ["round 0", "round 1", "round 2"]}
    out = await run_dsl(load_dsl("loop.yml"), {"stop_at": 100})
    assert out.outputs["count"] == 7  # loop-end reached through the if-else
    done = out.of(LoopCompleted)[0]
    assert done.steps == 7 and len(done.execution_metadata["loop_duration_map"]) == 7
    assert done.execution_metadata["loop_variable_map"]["0"]["count"] == 1
    out = await run_dsl(load_dsl("loop.yml"), {"stop_at": 0})
    assert out.outputs == {"count": 0, "log": []}  # break conditions are checked before the first round


def _chain(n: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "n0", "data": {"type": "start", "title": "S", "variables": []}}]
    edges = []
    for i in range(1, n + 1):
        nodes.append(
            {
                "id": f"n{i}",
                "data": {"type": "template-transform", "title": f"T{i}", "template": str(i), "variables": []},
            }
        )
        edges.append({"source": f"n{i - 1}", "target": f"n{i}"})
    nodes.append(
        {
            "id": "end",
            "data": {
                "type": "end",
                "title": "E",
                "outputs": [{"variable": "last", "value_selector": [f"n{n}", "output"]}],
            },
        }
    )
    edges.append({"source": f"n{n}", "target": "end"})
    return {"app": {"mode": "workflow"}, "workflow": {"graph": {"nodes": nodes, "edges": edges}}}


async def test_step_limit_ends_run_with_clear_error() -> None:
    out = await run_dsl(_chain(30), limits=RunLimits(max_steps=10))
    assert out.finished.status == "failed"
    assert out.finished.error == "Max steps 10 reached."
    assert len(out.of(NodeStarted)) == 10


def _slow_llm_in_iteration() -> dict[str, Any]:
    """The iteration's inner node is an LLM whose answer streams slowly (no sandbox process to orphan)."""
    dsl = load_dsl("iteration.yml")
    node_data(dsl, "double").clear()
    node_data(dsl, "double").update(
        type="llm",
        title="Slow",
        iteration_id="it",
        context={"enabled": False},
        model={"provider": "openai", "name": "m", "mode": "chat"},
        prompt_template=[{"role": "user", "text": "{{#it.item#}}"}],
    )
    node_data(dsl, "it")["output_selector"] = ["double", "text"]
    return dsl


async def test_time_limit_ends_run_with_clear_error(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.token_latency_s = 0.5
    fake_llm.reply("a b c d e f g h")
    t0 = time.perf_counter()
    out = await run_dsl(
        _slow_llm_in_iteration(), ports=Ports(models=models, sandbox=SANDBOX), limits=RunLimits(max_time_s=1.0)
    )
    assert time.perf_counter() - t0 < 2.5
    assert out.finished.status == "failed"
    assert out.finished.error == "Max execution time 1s reached."


async def test_stop_ends_run_as_stopped(fake_llm: FakeLLM, models: ProviderManager) -> None:
    fake_llm.token_latency_s = 0.5
    fake_llm.reply("a b c d e f g h")
    runner = WorkflowRunner(parse_graph(_slow_llm_in_iteration()), REGISTRIES, Ports(models=models, sandbox=SANDBOX))
    run = runner.start({})
    events = []
    t0 = time.perf_counter()
    async for ev in run.events():
        events.append(ev)
        if isinstance(ev, IterationNext):
            asyncio.get_running_loop().call_later(0.2, run.stop)
    assert time.perf_counter() - t0 < 2.5
    finished = events[-1]
    assert isinstance(finished, WorkflowFinished)
    assert (finished.status, finished.error) == ("stopped", "Stopped by user.")
    assert [e.status for e in events if isinstance(e, IterationCompleted)] == []  # cut short, not completed


async def test_long_chain_runs_every_node_once() -> None:
    out = await run_dsl(_chain(200), limits=RunLimits(max_steps=500))
    assert out.outputs == {"last": "200"}
    assert out.finished.total_steps == 202


async def test_step_limit_counts_each_iteration_item_separately() -> None:
    dsl = load_dsl("iteration.yml")
    node_data(dsl, "make")["code"] = "def main() -> dict:\n    return {'items': list(range(600))}\n"
    node_data(dsl, "double").update(
        type="template-transform", template="{{ x }}", variables=[{"variable": "x", "value_selector": ["it", "item"]}]
    )
    out = await run_dsl(dsl, limits=RunLimits(max_steps=100))
    assert out.finished.status == "succeeded", out.finished.error
    assert len(out.outputs["output"]) == 600
    assert out.finished.total_steps == 4  # start, make, it, end: the top level, as Dify counts


async def test_loop_count_bounds_rounds() -> None:
    dsl = load_dsl("loop.yml")
    node_data(dsl, "lp")["loop_count"] = 5
    out = await run_dsl(dsl, {"stop_at": 100})
    assert out.outputs["count"] == 5 and len(out.outputs["log"]) == 5


async def test_legacy_if_else_conditions_and_variable_assigner_name() -> None:
    dsl = load_dsl("branches.yml")
    route = node_data(dsl, "route")
    route["logical_operator"] = "and"
    route["conditions"] = route.pop("cases")[0]["conditions"]  # DSL 0.1.0: no cases, one implicit `true`
    node_data(dsl, "agg")["type"] = "variable-assigner"  # the aggregator's legacy type name
    for n, branch in ((11, "big 11"), (5, "small")):
        out = await run_dsl(dsl, {"n": n})
        assert out.outputs["branch"] == branch


async def test_stop_before_start_ends_at_once() -> None:
    run = WorkflowRunner(parse_graph(load_dsl("loop.yml")), REGISTRIES, Ports()).start({"stop_at": 3})
    run.stop()
    events = [ev async for ev in run.events()]
    assert isinstance(events[-1], WorkflowFinished) and events[-1].status == "stopped"
    assert len([e for e in events if isinstance(e, NodeFinished)]) <= 1
