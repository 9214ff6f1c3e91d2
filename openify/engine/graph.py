"""The typed graph of a Dify DSL `workflow` block, with Dify's legacy shapes repaired on the way in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openify.errors import DSLError

# Node types that may start a workflow (Dify's root rule).
_ROOT_TYPES = ("start", "datasource", "trigger-webhook", "trigger-schedule", "trigger-plugin")
_CONTAINERS = ("iteration", "loop")
_START_OF = {"iteration": "iteration-start", "loop": "loop-start"}


class GraphValidationError(DSLError):
    """The DSL's graph cannot be run: a missing node, a cycle, no root, or a node type Openify lacks."""

    code, status, message = "invalid_param", 400, "Invalid workflow graph."


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    type: str
    title: str
    data: Mapping[str, Any]
    parent_id: str | None = None  # the iteration/loop this node is a child of


@dataclass(frozen=True, slots=True)
class Edge:
    id: str
    source: str
    target: str
    source_handle: str = "source"


@dataclass
class Graph:
    """Every node of the DSL (containers' children included) and the edges between them."""

    nodes: dict[str, NodeSpec]
    edges: list[Edge]
    root_id: str
    mode: str = "workflow"
    environment_variables: list[Mapping[str, Any]] = field(default_factory=list)
    conversation_variables: list[Mapping[str, Any]] = field(default_factory=list)
    out_edges: dict[str, list[Edge]] = field(default_factory=dict)
    in_edges: dict[str, list[Edge]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what parsing repaired (dropped edges), for the importer

    def __post_init__(self) -> None:
        self.out_edges = {n: [] for n in self.nodes}
        self.in_edges = {n: [] for n in self.nodes}
        for e in self.edges:
            self.out_edges[e.source].append(e)
            self.in_edges[e.target].append(e)

    def children(self, container_id: str) -> list[NodeSpec]:
        return [n for n in self.nodes.values() if n.parent_id == container_id]

    def ancestors(self, node_id: str) -> set[str]:
        """Every node with a path to `node_id` inside the same (sub)graph."""
        seen: set[str] = set()
        todo = [node_id]
        while todo:
            for e in self.in_edges[todo.pop()]:
                if e.source not in seen:
                    seen.add(e.source)
                    todo.append(e.source)
        return seen


def _s(value: Any) -> str:
    """Ids and handles as strings: unquoted YAML turns them into ints and bools (`true` → 'true')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _workflow_block(dsl: Mapping[str, Any]) -> Mapping[str, Any]:
    wf = dsl.get("workflow")
    if not isinstance(wf, Mapping):
        raise GraphValidationError("The DSL has no `workflow` mapping.")
    graph = wf.get("graph")
    if not isinstance(graph, Mapping):
        raise GraphValidationError("The DSL's workflow has no `graph` mapping.")
    return wf


def _raw_nodes(dsl: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nodes = _workflow_block(dsl)["graph"].get("nodes") or []
    if not isinstance(nodes, list):
        raise GraphValidationError("`workflow.graph.nodes` must be a list.")
    return [n for n in nodes if isinstance(n, Mapping) and n.get("type") != "custom-note"]


def _node_type(raw: Mapping[str, Any]) -> str:
    data = raw.get("data") or {}
    return _s(data.get("type")) if isinstance(data, Mapping) else ""


def unsupported_nodes(dsl: Mapping[str, Any], registry: Any) -> list[tuple[str, str, str]]:
    """(node id, node type, title) of every node whose type no plugin registered in `registry.nodes`.

    A DSL without a workflow graph (chat, completion, agent-chat apps) has no nodes: the answer is []."""
    if not isinstance(dsl.get("workflow"), Mapping):
        return []
    out = []
    for raw in _raw_nodes(dsl):
        node_type = _node_type(raw)
        if node_type and node_type not in registry.nodes:
            out.append((_s(raw.get("id")), node_type, _s((raw.get("data") or {}).get("title"))))
    return out


def validate_dsl(dsl: Mapping[str, Any], registry: Any) -> Graph:
    """Parse the graph and refuse node types Openify lacks, naming each node; returns the Graph."""
    missing = unsupported_nodes(dsl, registry)
    if missing:
        names = ", ".join(f"{nid} ({ntype}, {title!r})" for nid, ntype, title in missing)
        raise GraphValidationError(f"Unsupported node type(s): {names}", nodes=missing)
    return parse_graph(dsl)


def parse_graph(dsl: Mapping[str, Any]) -> Graph:
    """Build the Graph from a parsed DSL dict (version 0.1.0-0.6.0). Raises GraphValidationError."""
    wf = _workflow_block(dsl)
    mode = _s((dsl.get("app") or {}).get("mode")) or "workflow"
    nodes: dict[str, NodeSpec] = {}
    for raw in _raw_nodes(dsl):
        node_id = _s(raw.get("id"))
        data = raw.get("data")
        if not node_id or not isinstance(data, Mapping):
            raise GraphValidationError(f"Node {node_id or '?'} has no id or no data.")
        node_type = _node_type(raw)
        if not node_type:
            raise GraphValidationError(f"Node {node_id} has no data.type.")
        if node_id in nodes:
            raise GraphValidationError(f"Node id {node_id} is used twice.")
        parent = raw.get("parentId") or data.get("iteration_id") or data.get("loop_id")
        nodes[node_id] = NodeSpec(node_id, node_type, _s(data.get("title")), data, _s(parent) or None)

    edges: list[Edge] = []
    warnings: list[str] = []
    for i, raw in enumerate(wf["graph"].get("edges") or []):
        if not isinstance(raw, Mapping):
            continue
        src, dst = _s(raw.get("source")), _s(raw.get("target"))
        missing = [end for end in (src, dst) if end not in nodes]
        if missing:  # Dify imports these and its editor drops them on open; so do we, with a warning
            warnings.append(f"Edge {raw.get('id', i)!s} refers to missing node {missing[0]!r}; dropped.")
            continue
        edges.append(Edge(_s(raw.get("id")) or f"e{i}", src, dst, _s(raw.get("sourceHandle")) or "source"))

    _repair_containers(nodes, edges)
    edges = _drop_cycle_edges(nodes, edges, warnings)
    root = _find_root(nodes, edges, None)
    graph = Graph(
        nodes=nodes,
        edges=edges,
        root_id=root,
        mode=mode,
        environment_variables=list(wf.get("environment_variables") or []),
        conversation_variables=list(wf.get("conversation_variables") or []) if mode == "advanced-chat" else [],
        warnings=warnings,
    )
    return graph


def _repair_containers(nodes: dict[str, NodeSpec], edges: list[Edge]) -> None:
    """Legacy (DSL 0.1.0-0.1.1) iterations have no start node: insert `<id>start` as Dify's editor does."""
    for node in list(nodes.values()):
        if node.type not in _CONTAINERS:
            continue
        start_type = _START_OF[node.type]
        start_id = _s(node.data.get("start_node_id"))
        start = nodes.get(start_id)
        if start is not None and start.type == start_type:
            continue
        new_id = f"{node.id}start"
        while new_id in nodes:
            new_id += "0"
        nodes[new_id] = NodeSpec(new_id, start_type, "", {"type": start_type, "title": ""}, node.id)
        if start is not None:
            edges.append(Edge(f"{new_id}-source-{start_id}-target", new_id, start_id))
        else:  # no valid entry at all: the container's first child without an incoming edge
            children = {n.id for n in nodes.values() if n.parent_id == node.id and n.id != new_id}
            targets = {e.target for e in edges}
            for child in sorted(children - targets):
                edges.append(Edge(f"{new_id}-source-{child}-target", new_id, child))
                break
        nodes[node.id] = NodeSpec(
            node.id, node.type, node.title, {**node.data, "start_node_id": new_id}, node.parent_id
        )


def _find_root(nodes: Mapping[str, NodeSpec], edges: Sequence[Edge], parent: str | None) -> str:
    scope = [n for n in nodes.values() if n.parent_id == parent]
    if not scope:
        raise GraphValidationError("The workflow graph has no nodes.")
    targets = {e.target for e in edges}
    candidates = [n for n in scope if n.id not in targets]
    for n in candidates:
        if n.type in _ROOT_TYPES:
            return n.id
    if candidates:
        return candidates[0].id
    raise GraphValidationError("The workflow graph has no root node (every node has an incoming edge).")


def _drop_cycle_edges(nodes: Mapping[str, NodeSpec], edges: list[Edge], warnings: list[str]) -> list[Edge]:
    """Drop edges that close a cycle (depth-first, in DSL order), as Dify's editor does when it loads one."""
    out: dict[str, list[Edge]] = {n: [] for n in nodes}
    for e in edges:
        out[e.source].append(e)
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    back: set[int] = set()
    for start in nodes:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, i = stack.pop()
            if i < len(out[node]):
                stack.append((node, i + 1))
                e = out[node][i]
                seen = state.get(e.target, 0)
                if seen == 1:
                    back.add(id(e))
                elif seen == 0:
                    state[e.target] = 1
                    stack.append((e.target, 0))
            else:
                state[node] = 2
    for e in edges:
        if id(e) in back:
            warnings.append(f"Edge {e.id} ({e.source} -> {e.target}) closes a cycle; dropped.")
    return [e for e in edges if id(e) not in back]
