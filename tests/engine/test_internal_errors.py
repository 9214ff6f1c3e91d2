"""A bug of ours inside a run is logged with the run and node ids and shown as an internal error; a node's
expected failure (user code, HTTP, model errors) stays a plain node failure, retried and routed as before."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from openify.engine.events import NodeFinished, NodeRetry, WorkflowFinished
from openify.engine.graph import parse_graph
from openify.engine.node import Node, NodeContext, NodeError, NodeResult
from openify.engine.ports import Ports
from openify.engine.runner import WorkflowRunner
from openify.plugins import build_registries
from openify.registry import Registries


class BuggyNode(Node):
    """A node type with a bug: it looks up a key that is not there."""

    type = "test-buggy"

    async def run(self, ctx: NodeContext) -> NodeResult:
        settings: dict[str, Any] = {}
        return NodeResult({"value": settings["missing"]})


class RefusingNode(Node):
    """A node type that fails as designed, the way a code node reports a user's exception."""

    type = "test-refusing"

    async def run(self, ctx: NodeContext) -> NodeResult:
        raise NodeError("the input is refused", error_type="RefusedError")


def _registries() -> Registries:
    r = build_registries()
    r.nodes.register(BuggyNode.type, BuggyNode)
    r.nodes.register(RefusingNode.type, RefusingNode)
    return r


def _dsl(node_type: str) -> dict[str, Any]:
    middle = {
        "type": node_type,
        "title": "Middle",
        "error_strategy": "default-value",
        "default_value": [{"key": "value", "type": "string", "value": "fallback"}],
        "retry_config": {"retry_enabled": True, "max_retries": 2, "retry_interval": 1},
    }
    return {
        "app": {"mode": "workflow", "name": "t"},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    {"id": "m", "data": middle},
                    {
                        "id": "e",
                        "data": {
                            "type": "end",
                            "title": "E",
                            "outputs": [{"variable": "value", "value_selector": ["m", "value"]}],
                        },
                    },
                ],
                "edges": [{"source": "s", "target": "m"}, {"source": "m", "target": "e"}],
            }
        },
    }


async def _run(node_type: str) -> tuple[str, list[Any]]:
    runner = WorkflowRunner(parse_graph(_dsl(node_type)), _registries(), Ports())
    run = runner.start({})
    return run.run_id, [ev async for ev in run.events()]


async def test_a_bug_is_logged_and_reported_as_internal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="openify.engine")
    run_id, events = await _run(BuggyNode.type)
    finished = events[-1]
    assert isinstance(finished, WorkflowFinished)
    node = next(e for e in events if isinstance(e, NodeFinished) and e.node_id == "m")
    # No retry and no default value hide a bug: the node and the run fail, saying it is internal.
    assert not [e for e in events if isinstance(e, NodeRetry)]
    assert node.status == "failed" and finished.status == "failed"
    assert node.error is not None and node.error.startswith("Internal error (KeyError) in node m")
    assert finished.error == node.error and "missing" not in node.error  # details only in the log
    [record] = [r for r in caplog.records if r.name == "openify.engine"]
    assert run_id in record.getMessage() and "node m" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


async def test_an_expected_node_error_stays_a_node_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="openify.engine")
    _, events = await _run(RefusingNode.type)
    finished = events[-1]
    assert isinstance(finished, WorkflowFinished)
    node = next(e for e in events if isinstance(e, NodeFinished) and e.node_id == "m")
    assert [e.retry_index for e in events if isinstance(e, NodeRetry)] == [0, 1]
    assert node.status == "exception" and node.error == "the input is refused"
    assert node.outputs["error_type"] == "RefusedError"
    assert finished.status == "partial-succeeded" and finished.outputs == {"value": "fallback"}
    assert not [r for r in caplog.records if r.name == "openify.engine" and r.levelno >= logging.ERROR]
