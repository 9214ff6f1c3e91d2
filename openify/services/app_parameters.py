"""What an app tells its callers about itself: `/info`, `/parameters`, `/meta`, `/site` (Dify shapes)."""

from __future__ import annotations

from typing import Any

from openify.settings import UploadSettings
from openify.storage.tables import App

_DEFAULT_FILE_UPLOAD = {
    "image": {"enabled": False, "number_limits": 3, "detail": "high", "transfer_methods": ["remote_url", "local_file"]}
}
_INPUT_FIELDS = (
    "variable", "label", "type", "required", "default", "max_length", "options", "hide", "description",
    "allowed_file_types", "allowed_file_extensions", "allowed_file_upload_methods", "json_schema",
)


def features_of(app: App) -> dict[str, Any]:
    """The feature block: `model_config` for easy-UI apps, `workflow.features` for workflow apps."""
    if app.workflow is not None:
        return dict(app.workflow.get("features") or {})
    return dict(app.model_config_ or {})


def start_variables(app: App) -> list[dict[str, Any]]:
    """The Start node's input variables of a workflow app."""
    graph = (app.workflow or {}).get("graph") or {}
    for node in graph.get("nodes") or []:
        data = node.get("data") or {}
        if data.get("type") == "start":
            return [v for v in data.get("variables") or [] if isinstance(v, dict)]
    return []


def user_input_form(app: App) -> list[dict[str, Any]]:
    """Dify's `user_input_form`: a list of one-key mappings, the key being the input type."""
    if app.workflow is not None:
        form = []
        for var in start_variables(app):
            kind = var.get("type") or "text-input"
            item = {k: var[k] for k in _INPUT_FIELDS if k in var}
            item.setdefault("required", False)
            item.setdefault("options", [])
            form.append({kind: item})
        return form
    return [f for f in (app.model_config_ or {}).get("user_input_form") or [] if isinstance(f, dict)]


def form_fields(app: App) -> list[tuple[str, dict[str, Any]]]:
    """`user_input_form` flattened to (type, field) pairs."""
    out = []
    for item in user_input_form(app):
        for kind, spec in item.items():
            if isinstance(spec, dict):
                out.append((kind, spec))
    return out


def _enabled(features: dict[str, Any], key: str, default: bool = False) -> dict[str, Any]:
    value = features.get(key)
    if isinstance(value, dict):
        return {**value, "enabled": bool(value.get("enabled", default))}
    return {"enabled": default}


def parameters(app: App, upload: UploadSettings) -> dict[str, Any]:
    f = features_of(app)
    tts = f.get("text_to_speech") if isinstance(f.get("text_to_speech"), dict) else {}
    sensitive = f.get("sensitive_word_avoidance") if isinstance(f.get("sensitive_word_avoidance"), dict) else {}
    return {
        "opening_statement": f.get("opening_statement") or "",
        "suggested_questions": list(f.get("suggested_questions") or []),
        "suggested_questions_after_answer": _enabled(f, "suggested_questions_after_answer"),
        "speech_to_text": _enabled(f, "speech_to_text"),
        "text_to_speech": {
            "enabled": bool(tts.get("enabled", False)),
            "voice": tts.get("voice", ""),
            "language": tts.get("language", ""),
            "autoPlay": tts.get("autoPlay", "disabled"),
        },
        # Dify treats a missing retriever_resource block as on.
        "retriever_resource": _enabled(f, "retriever_resource", default=True),
        "annotation_reply": _enabled(f, "annotation_reply"),
        "more_like_this": _enabled(f, "more_like_this"),
        "sensitive_word_avoidance": {
            # Workflow runs are not moderated (nor are they in Dify since 0.6): never reported on while off.
            "enabled": bool(sensitive.get("enabled", False)) and app.mode != "workflow",
            "type": sensitive.get("type", ""),
            "configs": sensitive.get("configs", []),
        },
        "user_input_form": user_input_form(app),
        "file_upload": f.get("file_upload") or _DEFAULT_FILE_UPLOAD,
        "system_parameters": {
            "file_size_limit": upload.file_size_limit_mb,
            "image_file_size_limit": upload.image_file_size_limit_mb,
            "audio_file_size_limit": upload.audio_file_size_limit_mb,
            "video_file_size_limit": upload.video_file_size_limit_mb,
            "workflow_file_upload_limit": upload.workflow_file_upload_limit,
        },
    }


def info(app: App) -> dict[str, Any]:
    return {"name": app.name, "description": app.description, "tags": [], "mode": app.mode, "author_name": ""}


def meta(app: App) -> dict[str, Any]:
    icons: dict[str, Any] = {}
    for tool in ((app.model_config_ or {}).get("agent_mode") or {}).get("tools") or []:
        if isinstance(tool, dict) and tool.get("tool_name"):
            icons[str(tool.get("provider_id") or tool["tool_name"])] = {"background": "#252525", "content": "🔧"}
    return {"tool_icons": icons}


def site(app: App) -> dict[str, Any]:
    return {
        "title": app.name,
        "chat_color_theme": None,
        "chat_color_theme_inverted": False,
        "icon_type": app.icon_type if app.icon_type in ("emoji", "image") else "emoji",
        "icon": app.icon,
        "icon_background": app.icon_background,
        "icon_url": None,
        "description": app.description,
        "copyright": None,
        "privacy_policy": None,
        "custom_disclaimer": "",
        "default_language": "en-US",
        "show_workflow_steps": True,
        "use_icon_as_answer_icon": app.use_icon_as_answer_icon,
    }
