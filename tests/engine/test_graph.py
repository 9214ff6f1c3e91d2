"""DSL graph parsing: every real export parses or names what Openify lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from openify.engine.graph import GraphValidationError, parse_graph, unsupported_nodes, validate_dsl
from openify.plugins import build_registries

DSL_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "dsl"  # beside the repository
WORKFLOW_FILES = sorted(
    p for p in DSL_DIR.glob("*.yml") if yaml.safe_load(p.read_text())["app"]["mode"] in ("workflow", "advanced-chat")
)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name[:2])
def test_every_real_workflow_parses(path: Path) -> None:
    graph = parse_graph(load(path))
    assert graph.nodes[graph.root_id].type == "start"
    assert all(n.type != "" for n in graph.nodes.values())
    for node in graph.nodes.values():
        if node.type in ("iteration", "loop"):
            start = graph.nodes[node.data["start_node_id"]]
            assert start.type == f"{node.type}-start" and start.parent_id == node.id


def test_unsupported_node_types_are_named() -> None:
    r = build_registries()
    by_file = {p.name[:2]: unsupported_nodes(load(p), r) for p in WORKFLOW_FILES}
    assert all(found == [] for found in by_file.values()), by_file  # tool and agent nodes run now
    doc = load(DSL_DIR / "03-workflow-0.1.0-jina-reader-legacy-iteration.yml")
    node = next(n for n in doc["workflow"]["graph"]["nodes"] if str(n["id"]) == "1713262010863")
    node["data"]["type"] = "teleport"
    assert ("1713262010863", "teleport", "TavilySearch") in unsupported_nodes(doc, r)
    with pytest.raises(GraphValidationError, match=r"1713262010863 \(teleport, 'TavilySearch'\)"):
        validate_dsl(doc, r)


def test_legacy_iteration_gets_a_start_node() -> None:
    graph = parse_graph(load(DSL_DIR / "03-workflow-0.1.0-jina-reader-legacy-iteration.yml"))
    it = graph.nodes["1716911333343"]
    start_id = it.data["start_node_id"]
    assert start_id == "1716911333343start"
    assert [e.target for e in graph.out_edges[start_id]] == ["1720758285748"]


def test_custom_notes_are_dropped() -> None:
    graph = parse_graph(load(DSL_DIR / "04-workflow-0.1.0-document-chat-classifier-knowledge-zh.yml"))
    assert all(n.type != "" for n in graph.nodes.values())


def _mini(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"app": {"mode": "workflow"}, "workflow": {"graph": {"nodes": nodes, "edges": edges}}}


def test_unquoted_ids_and_handles_are_strings() -> None:
    dsl = _mini(
        [
            {"id": 1, "data": {"type": "start", "title": "S"}},
            {"id": 2, "data": {"type": "if-else", "title": "I"}},
            {"id": 3, "data": {"type": "end", "title": "E"}},
        ],
        [{"source": 1, "target": 2}, {"source": 2, "sourceHandle": True, "target": 3}],
    )
    g = parse_graph(dsl)
    assert g.root_id == "1"
    assert [(e.source, e.source_handle) for e in g.edges] == [("1", "source"), ("2", "true")]


def test_missing_edge_ends_and_cycle_edges_are_dropped_with_warnings() -> None:
    s = {"id": "s", "data": {"type": "start", "title": "S"}}
    a = {"id": "a", "data": {"type": "end", "title": "A"}}
    b = {"id": "b", "data": {"type": "end", "title": "B"}}
    g = parse_graph(_mini([s, a], [{"id": "x", "source": "s", "target": "zz"}, {"source": "s", "target": "a"}]))
    assert [(e.source, e.target) for e in g.edges] == [("s", "a")]
    assert g.warnings == ["Edge x refers to missing node 'zz'; dropped."]
    edges = [
        {"source": "s", "target": "a"},
        {"source": "a", "target": "b"},
        {"id": "back", "source": "b", "target": "a"},
    ]
    g = parse_graph(_mini([s, a, b], edges))
    assert [(e.source, e.target) for e in g.edges] == [("s", "a"), ("a", "b")]
    assert g.warnings == ["Edge back (b -> a) closes a cycle; dropped."]


def test_graph_without_nodes_or_root_is_refused() -> None:
    with pytest.raises(GraphValidationError, match="no nodes"):
        parse_graph(_mini([], []))
    with pytest.raises(GraphValidationError, match=r"no data\.type"):
        parse_graph(_mini([{"id": "s", "data": {"title": "S"}}], []))


@pytest.mark.parametrize(
    "path", [p for p in sorted(DSL_DIR.glob("*.yml")) if p not in WORKFLOW_FILES], ids=lambda p: p.name[:2]
)
def test_model_config_apps_have_no_graph(path: Path) -> None:
    dsl = load(path)
    assert unsupported_nodes(dsl, build_registries()) == []
    with pytest.raises(GraphValidationError, match="no `workflow` mapping"):
        parse_graph(dsl)


def test_every_builtin_node_type_is_registered() -> None:
    names = set(build_registries().nodes.names())
    assert names == {
        "start",
        "end",
        "answer",
        "llm",
        "knowledge-retrieval",
        "question-classifier",
        "if-else",
        "code",
        "template-transform",
        "http-request",
        "variable-aggregator",
        "variable-assigner",
        "assigner",
        "parameter-extractor",
        "iteration",
        "iteration-start",
        "loop",
        "loop-start",
        "loop-end",
        "list-operator",
        "tool",
        "agent",
        "document-extractor",
    }


def test_real_exports_parse_without_repairs_except_legacy_iteration() -> None:
    for path in WORKFLOW_FILES:
        assert parse_graph(load(path)).warnings == [], path.name


def test_test_dsl_files_use_every_node_type_and_error_strategy() -> None:
    used: set[str] = set()
    strategies: set[str] = set()
    for path in sorted(Path(__file__).parent.glob("dsl/*.yml")):
        for node in parse_graph(load(path)).nodes.values():
            used.add(node.type)
            strategies.add(str(node.data.get("error_strategy") or ""))
    # `variable-assigner` is the aggregator's legacy name, exercised by test_runner on a renamed copy
    assert set(build_registries().nodes.names()) - used == {"variable-assigner"}
    assert {"fail-branch", "default-value"} <= strategies
