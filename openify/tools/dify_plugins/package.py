"""A Dify plugin package on disk: its validated `manifest.yaml` and the tool and strategy declarations it names.

The YAML shapes are the SDK's (`dify_plugin.entities.tool.ToolProviderConfiguration`, `ToolConfiguration`,
`AgentStrategyProviderConfiguration`); they are read here, at install time, so listing tools never starts a
plugin process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openify.errors import OpenifyError

# The Dify version Openify's plugin host stands for: a plugin needing a newer Dify is refused at install.
SUPPORTED_DIFY_VERSION = "1.9.0"
_NAME = re.compile(r"^[a-z0-9_-]{1,128}$")  # the daemon's plugin name rule
_VERSION = re.compile(r"^\d{1,4}(\.\d{1,4}){1,3}(-\w{1,16})?$")


class BadDifyPlugin(OpenifyError):
    """A Dify plugin package is malformed: a bad manifest, a missing declaration file, an unsupported kind."""

    code, status, message = "invalid_plugin", 400, "The plugin package is not valid."


class _Runner(BaseModel):
    language: str
    version: str = "3.12"
    entrypoint: str = "main"

    @field_validator("language")
    @classmethod
    def _python(cls, v: str) -> str:
        if v != "python":
            raise ValueError(f"runner language {v!r} is not supported (only python)")
        return v


class _Meta(BaseModel):
    version: str = "0.0.1"
    runner: _Runner
    minimum_dify_version: str | None = None
    arch: list[str] = Field(default_factory=list)


class _ModelPermission(BaseModel):
    model_config = ConfigDict(extra="allow")
    enabled: bool = False
    llm: bool = False
    text_embedding: bool = False
    rerank: bool = False
    tts: bool = False
    speech2text: bool = False
    moderation: bool = False


class _Enabled(BaseModel):
    model_config = ConfigDict(extra="allow")
    enabled: bool = False


class _Storage(BaseModel):
    enabled: bool = False
    size: int = 0


class Permissions(BaseModel):
    """`resource.permission`: what backwards invocations a plugin may make (the daemon's checks)."""

    model_config = ConfigDict(extra="allow")
    tool: _Enabled = Field(default_factory=_Enabled)
    model: _ModelPermission = Field(default_factory=_ModelPermission)
    node: _Enabled = Field(default_factory=_Enabled)
    endpoint: _Enabled = Field(default_factory=_Enabled)
    app: _Enabled = Field(default_factory=_Enabled)
    storage: _Storage = Field(default_factory=_Storage)


class _Resource(BaseModel):
    memory: int = 0
    permission: Permissions = Field(default_factory=Permissions)


class _Plugins(BaseModel):
    model_config = ConfigDict(extra="allow")
    tools: list[str] = Field(default_factory=list)
    agent_strategies: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    """`manifest.yaml`, validated as the daemon validates it (`pkg/entities/plugin_entities`)."""

    model_config = ConfigDict(extra="allow")
    type: str
    version: str
    author: str
    name: str
    label: dict[str, str] = Field(default_factory=dict)
    description: dict[str, str] = Field(default_factory=dict)
    icon: str = ""
    resource: _Resource = Field(default_factory=_Resource)
    plugins: _Plugins
    meta: _Meta

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v != "plugin":
            raise ValueError(f"type must be 'plugin', not {v!r}")
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not _VERSION.match(str(v)):
            raise ValueError(f"version {v!r} is not a version number")
        return str(v)

    @field_validator("author", "name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} must be 1-128 of a-z, 0-9, _ and -")
        return v

    @property
    def key(self) -> str:
        """`author/name`: what a DSL's plugin id starts with."""
        return f"{self.author}/{self.name}"


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v.split("-")[0])[:3])


def read_manifest(folder: Path) -> Manifest:
    """The validated manifest of a plugin folder; BadDifyPlugin names what is wrong."""
    path = folder / "manifest.yaml"
    if not path.is_file():
        raise BadDifyPlugin(f"bad manifest: {path.name} is missing")
    raw = _load_yaml(path)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadDifyPlugin(f"bad manifest: {where}: {first['msg']}") from None
    need = manifest.meta.minimum_dify_version
    if need and _version_tuple(need) > _version_tuple(SUPPORTED_DIFY_VERSION):
        raise BadDifyPlugin(
            f"bad manifest: {manifest.key} needs Dify {need}; Openify's plugin host stands for {SUPPORTED_DIFY_VERSION}"
        )
    if not manifest.plugins.tools and not manifest.plugins.agent_strategies:
        kinds = [k for k in ("models", "endpoints") if getattr(manifest.plugins, k)]
        raise BadDifyPlugin(
            f"bad manifest: {manifest.key} declares no tools or agent strategies"
            + (f" (only {', '.join(kinds)}, which Openify does not run)" if kinds else "")
        )
    return manifest


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise BadDifyPlugin(f"bad declaration {path.name}: {e}") from None
    if not isinstance(data, dict):
        raise BadDifyPlugin(f"bad declaration {path.name}: not a mapping")
    return data


def _inside(folder: Path, relative: str) -> Path:
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise BadDifyPlugin(f"bad manifest: {relative!r} points outside the plugin")
    if not path.is_file():
        raise BadDifyPlugin(f"bad manifest: {relative} is missing")
    return path


def _text(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {"en_US": str(value)} if value else {}


def _credentials(raw: Any) -> list[dict[str, Any]]:
    """Provider credential forms come as a mapping (name -> form) or a list; Dify accepts both."""
    if isinstance(raw, dict):
        return [{"name": k, **(v or {})} for k, v in raw.items()]
    return [dict(i) for i in raw or [] if isinstance(i, dict)]


def read_declarations(folder: Path, manifest: Manifest) -> dict[str, Any]:
    """Tool providers and agent-strategy providers, resolved from their YAML files into one JSON-able mapping."""
    tool_providers = []
    for rel in manifest.plugins.tools:
        provider = _load_yaml(_inside(folder, rel))
        tools = []
        for tool_rel in provider.get("tools") or []:
            tool = _load_yaml(_inside(folder, tool_rel))
            identity = tool.get("identity") or {}
            description = tool.get("description") or {}
            tools.append(
                {
                    "name": identity.get("name"),
                    "label": _text(identity.get("label")),
                    "description": str(description.get("llm", "")),
                    "human_description": _text(description.get("human")),
                    "parameters": tool.get("parameters") or [],
                    "output_schema": tool.get("output_schema"),
                }
            )
        identity = provider.get("identity") or {}
        tool_providers.append(
            {
                "name": identity.get("name"),
                "label": _text(identity.get("label")),
                "description": _text(identity.get("description")),
                "icon": identity.get("icon", ""),
                "credentials_schema": _credentials(provider.get("credentials_for_provider")),
                "oauth": bool(provider.get("oauth_schema")),
                "tools": tools,
            }
        )
    strategy_providers = []
    for rel in manifest.plugins.agent_strategies:
        provider = _load_yaml(_inside(folder, rel))
        strategies = []
        for strategy_rel in provider.get("strategies") or []:
            strategy = _load_yaml(_inside(folder, strategy_rel))
            identity = strategy.get("identity") or {}
            strategies.append(
                {
                    "name": identity.get("name"),
                    "label": _text(identity.get("label")),
                    "description": _text(strategy.get("description")).get("en_US", ""),
                    "parameters": strategy.get("parameters") or [],
                    "features": strategy.get("features") or [],
                }
            )
        identity = provider.get("identity") or {}
        strategy_providers.append(
            {"name": identity.get("name"), "label": _text(identity.get("label")), "strategies": strategies}
        )
    for p in tool_providers + strategy_providers:
        if not p["name"]:
            raise BadDifyPlugin("bad declaration: a provider has no identity.name")
    return {"tool_providers": tool_providers, "agent_strategy_providers": strategy_providers}
