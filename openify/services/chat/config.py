"""An easy-UI app's `model_config` read once into a typed view (chat, agent-chat, completion)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openify.engine.node import NodeError
from openify.engine.nodes.start import check_input
from openify.errors import AppUnavailable, InvalidParam
from openify.services.dsl import MODERATION_TYPES
from openify.storage.tables import App

_FORM_KINDS = ("text-input", "paragraph", "select", "number", "checkbox", "json_object", "file", "file-list")


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str
    name: str
    mode: str  # chat | completion
    params: Mapping[str, Any]
    stop: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentTool:
    provider_type: str
    provider_id: str
    tool_name: str
    tool_label: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Moderation:
    """Content moderation (`sensitive_word_avoidance`): `keywords` or `openai_moderation` (the configured
    moderation model); a preset of None means that side (inputs, outputs) is off."""

    keywords: tuple[str, ...] = ()
    input_preset: str | None = None
    output_preset: str | None = None
    kind: str = "keywords"

    def flags(self, *texts: str) -> bool:
        """Case-insensitive substring match, as Dify's keywords moderation."""
        lowered = [t.lower() for t in texts if t]
        return any(k in t for k in self.keywords for t in lowered)


def moderation_of(block: Any) -> Moderation:
    """The moderation a `sensitive_word_avoidance` block configures (easy-UI model_config or chatflow features).
    Types other than MODERATION_TYPES are refused at import (services/dsl.py), so they never reach here on."""
    block = _dict(block)
    config = _dict(block.get("config")) or _dict(block.get("configs"))
    kind = block.get("type")
    if not block.get("enabled") or kind not in MODERATION_TYPES:
        return Moderation()
    # Dify keeps at most 100 keyword lines and 100-character preset responses.
    keywords = tuple(k.strip().lower() for k in str(config.get("keywords") or "").splitlines() if k.strip())[:100]
    inputs, outputs = _dict(config.get("inputs_config")), _dict(config.get("outputs_config"))
    return Moderation(
        keywords,
        str(inputs.get("preset_response") or "")[:100] if inputs.get("enabled") else None,
        str(outputs.get("preset_response") or "")[:100] if outputs.get("enabled") else None,
        str(kind),
    )


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything a generation needs from the app, parsed and checked once per app version."""

    app_id: str
    mode: str
    model: ModelRef
    prompt_type: str
    pre_prompt: str
    chat_prompt: tuple[tuple[str, str], ...]
    completion_prompt: str
    history_prefixes: tuple[str, str]
    form: tuple[dict[str, Any], ...]
    opening_statement: str
    suggested_questions_after_answer: bool
    retriever_resource: bool
    dataset_ids: tuple[str, ...]
    dataset_configs: Mapping[str, Any]
    dataset_query_variable: str
    agent_enabled: bool
    agent_strategy: str
    agent_max_iteration: int
    agent_tools: tuple[AgentTool, ...]
    image_upload: bool
    moderation: Moderation
    image_detail: str
    file_number_limit: int
    raw: Mapping[str, Any] = field(repr=False)

    def check_inputs(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Inputs checked against `user_input_form` as Dify's _prepare_user_inputs: undeclared keys dropped,
        defaults filled, types converted; a bad value is a 400 `invalid_param` naming the field."""
        given = given or {}
        out: dict[str, Any] = {}
        for var in self.form:
            name = var["variable"]
            try:
                value = check_input(var, given.get(name))
            except NodeError as exc:
                raise InvalidParam(str(exc), params=name) from None
            out[name] = value
        return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _enabled(value: Any, default: bool = False) -> bool:
    return bool(value.get("enabled", default)) if isinstance(value, dict) else default


def _form(items: Any) -> tuple[dict[str, Any], ...]:
    out = []
    for item in items or []:
        for kind, spec in _dict(item).items():
            if kind in _FORM_KINDS and isinstance(spec, dict) and spec.get("variable"):
                out.append({**spec, "type": kind, "variable": str(spec["variable"])})
    return tuple(out)


def _dataset_ids(mc: Mapping[str, Any]) -> tuple[str, ...]:
    ids: list[str] = []
    for entry in _dict(_dict(mc.get("dataset_configs")).get("datasets")).get("datasets") or []:
        ds = _dict(_dict(entry).get("dataset"))
        if ds.get("id") and ds.get("enabled", True):
            ids.append(str(ds["id"]))
    for tool in _dict(mc.get("agent_mode")).get("tools") or []:  # very old apps list datasets as agent tools
        ds = _dict(_dict(tool).get("dataset"))
        if ds.get("id") and ds.get("enabled", True):
            ids.append(str(ds["id"]))
    return tuple(dict.fromkeys(ids))


def _tools(agent: Mapping[str, Any]) -> tuple[AgentTool, ...]:
    out = []
    for t in agent.get("tools") or []:
        t = _dict(t)
        # Dify uses a tool entry only when it has >= 4 keys and is enabled.
        if len(t) < 4 or not t.get("enabled", False) or not t.get("tool_name"):
            continue
        out.append(
            AgentTool(
                provider_type=str(t.get("provider_type") or "builtin"),
                provider_id=str(t.get("provider_id") or ""),
                tool_name=str(t["tool_name"]),
                tool_label=str(t.get("tool_label") or t["tool_name"]),
                parameters=_dict(t.get("tool_parameters")),
            )
        )
    return tuple(out)


def _strategy(agent: Mapping[str, Any], provider: str) -> str:
    strategy = str(agent.get("strategy") or "")
    if strategy == "function_call":
        return "function_call"
    if strategy in ("react", "cot"):
        return "react"
    # old configs (router, react_router, missing): function calling for OpenAI, else ReAct
    return "function_call" if provider.rsplit("/", 1)[-1] == "openai" else "react"


def parse(app: App) -> AppConfig:
    mc = app.model_config_
    if not isinstance(mc, dict):
        raise AppUnavailable()
    model = _dict(mc.get("model"))
    if not model.get("name") or not model.get("provider"):
        raise AppUnavailable()
    params = dict(_dict(model.get("completion_params")))
    stop = params.pop("stop", None) or []
    agent = _dict(mc.get("agent_mode"))
    chat_prompt = tuple(
        (str(p.get("role") or "user"), str(p.get("text") or ""))
        for p in _dict(mc.get("chat_prompt_config")).get("prompt") or []
        if isinstance(p, dict)
    )
    cpc = _dict(mc.get("completion_prompt_config"))
    roles = _dict(cpc.get("conversation_histories_role"))
    upload = _dict(mc.get("file_upload"))
    image = _dict(upload.get("image"))
    image_on = bool(image.get("enabled")) or (
        bool(upload.get("enabled")) and "image" in (upload.get("allowed_file_types") or [])
    )
    dataset_configs = _dict(mc.get("dataset_configs"))
    return AppConfig(
        app_id=app.id,
        mode=app.mode,
        model=ModelRef(
            provider=str(model["provider"]),
            name=str(model["name"]),
            mode=str(model.get("mode") or "chat"),
            params=params,
            stop=tuple(str(s) for s in stop if isinstance(s, str))[:4],
        ),
        prompt_type=str(mc.get("prompt_type") or "simple"),
        pre_prompt=str(mc.get("pre_prompt") or ""),
        chat_prompt=chat_prompt,
        completion_prompt=str(_dict(cpc.get("prompt")).get("text") or ""),
        history_prefixes=(str(roles.get("user_prefix") or "Human"), str(roles.get("assistant_prefix") or "Assistant")),
        form=_form(mc.get("user_input_form")),
        opening_statement=str(mc.get("opening_statement") or ""),
        suggested_questions_after_answer=_enabled(mc.get("suggested_questions_after_answer")),
        retriever_resource=_enabled(mc.get("retriever_resource"), default=True),
        dataset_ids=_dataset_ids(mc),
        dataset_configs=dataset_configs,
        dataset_query_variable=str(mc.get("dataset_query_variable") or ""),
        agent_enabled=app.mode == "agent-chat" or _enabled(agent),
        agent_strategy=_strategy(agent, str(model["provider"])),
        agent_max_iteration=max(1, min(int(agent.get("max_iteration") or 10), 99)),
        agent_tools=_tools(agent),
        image_upload=image_on,
        moderation=moderation_of(mc.get("sensitive_word_avoidance")),
        image_detail=str(image.get("detail") or "high"),
        file_number_limit=int(upload.get("number_limits") or image.get("number_limits") or 3),
        raw=mc,
    )
