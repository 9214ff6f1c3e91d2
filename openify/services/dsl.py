"""Reading and writing Dify's app DSL (the YAML Dify exports), every version from 0.1.0 to 0.6.0.

Only what decides whether an app can exist is checked here (YAML, kind, version, mode, the blocks the
mode needs, node types we can run). Node data is checked when a run needs it, as Dify does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from openify.errors import DSLError

MODES = ("chat", "completion", "agent-chat", "advanced-chat", "workflow")
WORKFLOW_MODES = ("workflow", "advanced-chat")
NEWEST_DSL_VERSION = (0, 6, 0)
MAX_DSL_BYTES = 10 * 1024 * 1024  # Dify's import cap
# Agent-app tool entries that are not tools of a tool source (knowledge bases are the app's own).
_NOT_TOOL_SOURCES = frozenset({"dataset", "dataset-retrieval"})

# Node types the workflow runner knows; filled by the engine's node registry.
NodeTypeCheck = Callable[[str], bool]


@dataclass
class AppDefinition:
    """A parsed, checked DSL document: what an `apps` row is made of."""

    mode: str
    name: str
    description: str
    icon_type: str
    icon: str | None
    icon_background: str | None
    use_icon_as_answer_icon: bool
    dsl_version: str
    model_config: dict[str, Any] | None
    workflow: dict[str, Any] | None
    dependencies: list[Any]
    warnings: list[str] = field(default_factory=list)


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise DSLError(f"DSL version {version!r} cannot be read: expected a version such as '0.3.1'")
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2]


def parse_dsl(text: str | bytes, is_node_type_supported: NodeTypeCheck) -> AppDefinition:
    """Parse and check DSL text; raise DSLError naming the problem. Creates nothing."""
    if len(text) > MAX_DSL_BYTES:
        raise DSLError("DSL file is larger than 10 MB")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DSLError(f"DSL is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict):
        raise DSLError("DSL must be a YAML mapping at the top level")

    version = doc.get("version")
    if version in (None, ""):
        version = "0.1.0"  # the oldest exports carry no version; Dify reads them as 0.1.0
    if not isinstance(version, str):
        raise DSLError(f"Invalid version type: DSL version must be a string such as '0.3.1', got {version!r}")
    if _version_tuple(version) > NEWEST_DSL_VERSION:
        newest = ".".join(map(str, NEWEST_DSL_VERSION))
        raise DSLError(f"DSL version {version} is newer than the newest this server reads ({newest})")

    kind = doc.get("kind", "app")
    if kind != "app":
        raise DSLError(f"Unknown DSL kind {kind!r}: only 'app' can be imported")

    app = doc.get("app")
    if not isinstance(app, dict):
        raise DSLError("Missing app data in YAML content")
    mode = app.get("mode")
    if not mode:
        raise DSLError("Missing app mode in YAML content")
    if mode not in MODES:
        raise DSLError(f"Unknown app mode {mode!r}: expected one of {', '.join(MODES)}")
    name = app.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DSLError("Missing app name in YAML content")

    warnings: list[str] = []
    model_config: dict[str, Any] | None = None
    workflow: dict[str, Any] | None = None
    if mode in WORKFLOW_MODES:
        workflow = _check_workflow(doc.get("workflow"), is_node_type_supported)
        features = workflow.get("features")
        if mode == "advanced-chat" and isinstance(features, dict):
            _check_moderation(features.get("sensitive_word_avoidance"), "workflow.features")
    else:
        model_config = _check_model_config(doc.get("model_config"), mode)
        _check_moderation(model_config.get("sensitive_word_avoidance"), "model_config")

    icon_type = app.get("icon_type") or "emoji"
    deps = doc.get("dependencies") or []
    return AppDefinition(
        mode=mode,
        name=name.strip()[:255],
        description=str(app.get("description") or ""),
        icon_type=icon_type if icon_type in ("emoji", "image", "link") else "emoji",
        icon=app.get("icon"),
        icon_background=app.get("icon_background"),
        use_icon_as_answer_icon=bool(app.get("use_icon_as_answer_icon", False)),
        dsl_version=version,
        model_config=model_config,
        workflow=workflow,
        dependencies=deps if isinstance(deps, list) else [],
        warnings=warnings,
    )


def _check_workflow(workflow: Any, is_node_type_supported: NodeTypeCheck) -> dict[str, Any]:
    if not isinstance(workflow, dict):
        raise DSLError("Missing workflow data for a workflow or advanced-chat app")
    graph = workflow.get("graph")
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise DSLError("Workflow graph must be a mapping with a list of nodes")
    unsupported: list[str] = []
    for node in graph["nodes"]:
        if not isinstance(node, dict) or not isinstance(node.get("data"), dict):
            raise DSLError(f"Workflow node {node!r:.80} has no data mapping")
        if node.get("type") == "custom-note":
            continue  # canvas notes never run
        node_type = str(node["data"].get("type") or "")
        if not is_node_type_supported(node_type):
            title = node["data"].get("title") or ""
            unsupported.append(f"node {str(node.get('id'))!r} ({title}) of type {node_type!r}")
    if unsupported:
        raise DSLError("Unsupported node type(s), not available in Openify yet: " + "; ".join(unsupported))
    for key in ("environment_variables", "conversation_variables"):
        value = workflow.get(key) or []
        if not isinstance(value, list):
            raise DSLError(f"workflow.{key} must be a list")
        for var in value:
            if not isinstance(var, dict) or not var.get("name"):
                raise DSLError(f"workflow.{key} has an entry without a name: {var!r:.80}")
    return workflow


# Content moderation types Openify runs (services/chat/moderation); others are refused at import.
MODERATION_TYPES = ("keywords", "openai_moderation")


def _check_moderation(block: Any, where: str) -> None:
    """Content moderation Openify cannot run is refused, never imported as on while it is off. Dify's `api` type
    calls an API extension (a workspace-level HTTP endpoint) that a DSL does not carry."""
    if isinstance(block, dict) and block.get("enabled") and block.get("type") not in MODERATION_TYPES:
        raise DSLError(
            f"{where}.sensitive_word_avoidance: content moderation of type {block.get('type')!r} is not supported "
            f"(supported: {', '.join(MODERATION_TYPES)}); switch it off or change its type, then import again"
        )


def _check_model_config(model_config: Any, mode: str) -> dict[str, Any]:
    if not isinstance(model_config, dict):
        raise DSLError(f"Missing model_config for a {mode} app")
    model = model_config.get("model")
    if not isinstance(model, dict) or not model.get("provider") or not model.get("name"):
        raise DSLError("model_config.model must name a provider and a model")
    # Tools are never a reason to refuse: the ones no source has are reported by `requirements` (Dify imports
    # such apps too and lists their plugins as dependencies to install).
    return model_config


@dataclass(frozen=True, slots=True)
class RequiredTool:
    provider_type: str
    provider: str
    tool: str


@dataclass
class Requirements:
    """What an app needs beyond its DSL: tools, agent strategies, and the plugins its `dependencies` name."""

    tools: list[RequiredTool] = field(default_factory=list)
    strategies: list[tuple[str, str]] = field(default_factory=list)  # (provider, strategy)
    # plugin id (`author/name`) -> full identifier (`author/name:version@hash`) from `dependencies`
    plugins: dict[str, str] = field(default_factory=dict)


def dependency_identifier(dep: Any) -> str | None:
    """The plugin identifier of one `dependencies` entry: marketplace, package or github (Dify's shapes)."""
    if not isinstance(dep, dict) or not isinstance(dep.get("value"), dict):
        return None
    value = dep["value"]
    key = {
        "marketplace": "marketplace_plugin_unique_identifier",
        "package": "plugin_unique_identifier",
        "github": "github_plugin_unique_identifier",
    }.get(str(dep.get("type")))
    found = value.get(key) if key else None
    return str(found) if found else None


def _tool_entry(entry: Any, type_key: str, provider_keys: tuple[str, ...]) -> RequiredTool | None:
    if not isinstance(entry, dict) or entry.get("enabled") is False:
        return None
    kind = str(entry.get(type_key) or "builtin")
    provider = next((str(entry[k]) for k in provider_keys if entry.get(k)), "")
    if kind in _NOT_TOOL_SOURCES or not provider or not entry.get("tool_name"):
        return None
    return RequiredTool(kind, provider, str(entry["tool_name"]))


def requirements(definition: AppDefinition) -> Requirements:
    """The tools and strategies the graph's tool and agent nodes and the agent app's model config name."""
    out = Requirements()
    for dep in definition.dependencies:
        ident = dependency_identifier(dep)
        if ident:
            out.plugins[ident.split(":", 1)[0].split("@", 1)[0]] = ident
    found: list[RequiredTool | None] = []
    nodes = ((definition.workflow or {}).get("graph") or {}).get("nodes") or []
    for node in nodes:
        data = node.get("data") if isinstance(node, dict) else None
        if not isinstance(data, dict):
            continue
        pinned = data.get("plugin_unique_identifier")  # tool and agent nodes name their plugin's version
        if data.get("type") in ("tool", "agent") and isinstance(pinned, str) and ":" in pinned:
            out.plugins.setdefault(pinned.split(":", 1)[0], pinned)
        if data.get("type") == "tool":
            found.append(_tool_entry({**data, "enabled": True}, "provider_type", ("provider_id", "provider_name")))
        elif data.get("type") == "agent":
            provider, strategy = data.get("agent_strategy_provider_name"), data.get("agent_strategy_name")
            if provider and strategy:
                out.strategies.append((str(provider), str(strategy)))
            tools = ((data.get("agent_parameters") or {}).get("tools") or {}).get("value")
            for entry in tools if isinstance(tools, list) else []:
                found.append(_tool_entry(entry, "type", ("provider_name", "provider_id")))
    agent_mode = (definition.model_config or {}).get("agent_mode") or {}
    for entry in agent_mode.get("tools") or [] if isinstance(agent_mode, dict) else []:
        if isinstance(entry, dict) and len(entry) >= 4:  # Dify uses an entry only when it has >= 4 keys
            found.append(_tool_entry(entry, "provider_type", ("provider_id", "provider_name")))
    for tool in found:
        if tool is not None and tool not in out.tools:
            out.tools.append(tool)
    return out


def export_dsl(definition: AppDefinition, include_secret: bool = False) -> str:
    """DSL YAML that imports back to an equal app; secret environment values are left out unless asked for."""
    doc: dict[str, Any] = {
        "version": definition.dsl_version,
        "kind": "app",
        "app": {
            "name": definition.name,
            "mode": definition.mode,
            "icon": definition.icon,
            "icon_type": definition.icon_type,
            "icon_background": definition.icon_background,
            "description": definition.description,
            "use_icon_as_answer_icon": definition.use_icon_as_answer_icon,
        },
        "dependencies": definition.dependencies,
    }
    if definition.workflow is not None:
        doc["workflow"] = definition.workflow if include_secret else _without_secrets(definition.workflow)
    if definition.model_config is not None:
        doc["model_config"] = definition.model_config
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _without_secrets(workflow: dict[str, Any]) -> dict[str, Any]:
    # Dify's Workflow.to_dict(include_secret=False) keeps a secret variable and sets its value to "".
    env = [
        {**v, "value": ""} if isinstance(v, dict) and v.get("value_type") == "secret" else v
        for v in workflow.get("environment_variables") or []
    ]
    return {**workflow, "environment_variables": env}
