"""The host side of the `dify_plugin` SDK's stdio line protocol: one JSON object per line each way.

Hand-written because the SDK's own entities (`dify_plugin.core.entities.plugin.io`, `request.py`) need
Python >= 3.12 and pull in gevent, Flask and the SDK itself; the host runs on 3.11 and must not import
third-party plugin code. The shapes follow the SDK (`core/server/stdio`, `core/runtime.py`) and the Go
daemon (`dify-plugin-daemon`, `internal/core/plugin_manager/local_runtime`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from openify.tools.base import (
    FileMessage,
    JsonMessage,
    LinkMessage,
    LogMessage,
    RetrieverResourcesMessage,
    TextMessage,
    ToolMessage,
    VariableMessage,
)

# ---------------------------------------------------------------------------------------------- host -> plugin


def request_line(session_id: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> bytes:
    """A request (`event: request`); `extra` holds the optional keys beside `data` (app_id, conversation_id...)."""
    body: dict[str, Any] = {"session_id": session_id, "event": "request", "data": dict(data)}
    body.update({k: v for k, v in (extra or {}).items() if v is not None})
    return _line(body)


def backwards_line(
    session_id: str,
    request_id: str,
    event: Literal["response", "end", "error"],
    data: Any = None,
    message: str = "",
) -> bytes:
    """One answer to a backwards invocation: any number of `response` lines, then one `end` or `error`.

    The SDK parses `data` as `BackwardsInvocationResponseEvent` (`core/entities/invocation`)."""
    payload = {"backwards_request_id": request_id, "event": event, "message": message, "data": data}
    return _line({"session_id": session_id, "event": "backwards_response", "data": payload})


def _line(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n"


# ---------------------------------------------------------------------------------------------- plugin -> host


@dataclass(frozen=True, slots=True)
class Declaration:
    """The first line a plugin writes: its manifest, resolved."""

    manifest: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class PluginLog:
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class SessionStream:
    """One stream item of a session: a tool message, an agent log, an LLM chunk..."""

    session_id: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SessionEnd:
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionError:
    session_id: str
    error_type: str
    message: str


@dataclass(frozen=True, slots=True)
class SessionInvoke:
    """A backwards invocation: the plugin asks the host for an LLM call, a tool, storage..."""

    session_id: str
    request_id: str
    type: str  # the SDK's InvokeType value: llm, tool, storage, app, upload_file, ...
    request: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Unknown:
    raw: Mapping[str, Any]


PluginEvent = Declaration | Heartbeat | PluginLog | SessionStream | SessionEnd | SessionError | SessionInvoke | Unknown


class ProtocolError(Exception):
    """A line from the plugin that is not JSON."""


def parse_line(line: bytes) -> PluginEvent | None:
    """One stdout line; None for a blank line (the SDK writes blank lines between messages)."""
    line = line.strip()
    if not line:
        return None
    try:
        body = json.loads(line)
    except ValueError as e:
        raise ProtocolError(f"not a protocol line: {line[:200]!r}") from e
    if not isinstance(body, dict):
        raise ProtocolError(f"not a protocol object: {line[:200]!r}")
    event = body.get("event")
    raw_data = body.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    if event is None and "type" in body and "plugins" in body:
        return Declaration(body)
    if event == "heartbeat":
        return Heartbeat()
    if event == "log":
        return PluginLog(str(data.get("level", "INFO")), str(data.get("message", "")))
    if event == "error":  # a line the SDK could not parse: no session to blame
        return PluginLog("ERROR", str(data.get("error", data)))
    if event == "session":
        sid = str(body.get("session_id"))
        raw_inner = data.get("data")
        inner: dict[str, Any] = raw_inner if isinstance(raw_inner, dict) else {}
        match data.get("type"):
            case "stream":
                return SessionStream(sid, inner)
            case "end":
                return SessionEnd(sid)
            case "error":
                return SessionError(sid, str(inner.get("error_type", "Exception")), str(inner.get("message", "")))
            case "invoke":
                return SessionInvoke(
                    sid,
                    str(inner.get("backwards_request_id", "")),
                    str(inner.get("type", "")),
                    inner.get("request") or {},
                )
    return Unknown(body)


# ---------------------------------------------------------------------------------------------- tool messages


def tool_message(item: Mapping[str, Any]) -> ToolMessage | None:
    """A stream item (the SDK's `ToolInvokeMessage`) as a typed message; None for types a host ignores."""
    kind, msg = item.get("type"), item.get("message") or {}
    meta = item.get("meta") or {}
    match kind:
        case "text":
            return TextMessage(str(msg.get("text", "")))
        case "json":
            return JsonMessage(msg.get("json_object"))
        case "link":
            return LinkMessage(str(msg.get("text", "")))
        case "image_link" | "image":
            return FileMessage(
                mime_type=str(meta.get("mime_type", "image/png")), url=str(msg.get("text", "")), meta=meta
            )
        case "blob" | "file":
            blob = msg.get("blob")
            data = base64.b64decode(blob) if isinstance(blob, str) else blob if isinstance(blob, bytes) else None
            filename = str(meta.get("filename") or meta.get("file_name") or "")
            mime = str(meta.get("mime_type") or "application/octet-stream")
            return FileMessage(mime_type=mime, filename=filename, data=data, url=msg.get("url"), meta=meta)
        case "variable":
            return VariableMessage(
                str(msg.get("variable_name", "")), msg.get("variable_value"), bool(msg.get("stream", False))
            )
        case "log":
            return LogMessage(
                id=str(msg.get("id", "")),
                label=str(msg.get("label", "")),
                status=msg.get("status", "start"),
                data=msg.get("data") or {},
                parent_id=msg.get("parent_id"),
                error=msg.get("error"),
                metadata=msg.get("metadata") or {},
            )
        case "retriever_resources":
            return RetrieverResourcesMessage(msg.get("retriever_resources") or [], str(msg.get("context", "")))
    return None


def wire_message(message: ToolMessage) -> dict[str, Any]:
    """A typed message back in the SDK's `ToolInvokeMessage` shape (tool results of backwards calls)."""
    match message:
        case TextMessage(text=text):
            return {"type": "text", "message": {"text": text}, "meta": None}
        case JsonMessage(data=data):
            return {"type": "json", "message": {"json_object": data}, "meta": None}
        case LinkMessage(url=url):
            return {"type": "link", "message": {"text": url}, "meta": None}
        case VariableMessage(name=name, value=value, stream=stream):
            body = {"variable_name": name, "variable_value": value, "stream": stream}
            return {"type": "variable", "message": body, "meta": None}
        case FileMessage(url=url, data=data, mime_type=mime, filename=filename, meta=meta):
            meta_out = {**meta, "mime_type": mime, "filename": filename}
            if data is not None:
                return {"type": "blob", "message": {"blob": base64.b64encode(data).decode()}, "meta": meta_out}
            return {"type": "image_link", "message": {"text": url or ""}, "meta": meta_out}
        case LogMessage() as log:
            body = {
                "id": log.id,
                "label": log.label,
                "parent_id": log.parent_id,
                "error": log.error,
                "status": log.status,
                "data": dict(log.data),
                "metadata": dict(log.metadata),
            }
            return {"type": "log", "message": body, "meta": None}
        case RetrieverResourcesMessage(resources=resources, context=context):
            body = {"retriever_resources": list(resources), "context": context}
            return {"type": "retriever_resources", "message": body, "meta": None}
