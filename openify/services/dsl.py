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
from openify.services.chat.config import MODERATION_TYPES

MODES = ("chat", "completion", "agent-chat", "advanced-chat", "workflow")
WORKFLOW_MODES = ("workflow", "advanced-chat")
NEWEST_DSL_VERSION = (0, 6, 0)
MAX_DSL_BYTES = 10 * 1024 * 1024  # Dify's import cap
# Tools an agent app may use; anything else is reported at import and unavailable at run time.
_AGENT_TOOL_TYPES_SUPPORTED = frozenset({"builtin", "dataset-retrieval"})

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
        model_config = _check_model_config(doc.get("model_config"), mode, warnings)
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


def _check_moderation(block: Any, where: str) -> None:
    """Content moderation Openify cannot run is refused, never imported as on while it is off. Dify's `api` type
    calls an API extension (a workspace-level HTTP endpoint) that a DSL does not carry."""
    if isinstance(block, dict) and block.get("enabled") and block.get("type") not in MODERATION_TYPES:
        raise DSLError(
            f"{where}.sensitive_word_avoidance: content moderation of type {block.get('type')!r} is not supported "
            f"(supported: {', '.join(MODERATION_TYPES)}); switch it off or change its type, then import again"
        )


def _check_model_config(model_config: Any, mode: str, warnings: list[str]) -> dict[str, Any]:
    if not isinstance(model_config, dict):
        raise DSLError(f"Missing model_config for a {mode} app")
    model = model_config.get("model")
    if not isinstance(model, dict) or not model.get("provider") or not model.get("name"):
        raise DSLError("model_config.model must name a provider and a model")
    agent_mode = model_config.get("agent_mode") or {}
    for tool in agent_mode.get("tools") or []:
        if not isinstance(tool, dict) or len(tool) < 4 or not tool.get("enabled", False):
            continue  # Dify uses a tool entry only when it has >= 4 keys and is enabled
        kind = tool.get("provider_type")
        if kind not in _AGENT_TOOL_TYPES_SUPPORTED:
            warnings.append(
                f"agent tool {tool.get('tool_name')!r} of provider type {kind!r} is not supported yet and will be unavailable"
            )
    return model_config


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
