"""Backwards invocations: what a Dify plugin asks of the host mid-call, served by Openify's own providers and
services (through `ToolHost`) and checked against the plugin's declared permissions.

Answers must validate as the SDK's entities (`dify_plugin.entities.model.llm.LLMResultChunk`,
`...text_embedding.TextEmbeddingResult`, `...rerank.RerankResult`, the storage and file invocations' dicts).
Anything Openify cannot serve raises, and the runtime answers it with the protocol's `error` line, which the
SDK raises inside the plugin: the plugin's call fails at once, never hangs.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from openify.providers.base import (
    ChatMessage,
    ContentPart,
    ImagePart,
    LLMRequest,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageReport,
)
from openify.providers.base import ToolCall as ModelToolCall
from openify.tools.base import BackwardsHost, ToolCall, ToolHost, ToolRef
from openify.tools.dify_plugins.protocol import SessionInvoke, wire_message
from openify.tools.dify_plugins.runtime import Session
from openify.tools.dify_plugins.store import DifyPluginStore


class BackwardsDenied(Exception):
    """A plugin asked for something its manifest does not permit, or that Openify does not serve."""


class BackwardsInvocations:
    """The `Backwards` handler of `PluginRuntime`."""

    def __init__(self, host: ToolHost, store: DifyPluginStore) -> None:
        self._host, self._store = host, store

    @property
    def _server(self) -> BackwardsHost:
        if not isinstance(self._host, BackwardsHost):
            raise BackwardsDenied("this host serves no tool, app or file invocations")
        return self._host

    def __call__(self, session: Session, call: SessionInvoke) -> AsyncIterator[Mapping[str, Any]]:
        self._check(session, call)
        match call.type:
            case "llm":
                return self._llm(call.request)
            case "text_embedding":
                return self._embedding(call.request)
            case "rerank":
                return self._rerank(call.request)
            case "tool":
                return self._tool(session, call.request)
            case "app":
                return self._app(session, call.request)
            case "storage":
                return self._storage(session, call.request)
            case "upload_file":
                return self._upload(call.request)
        raise BackwardsDenied(f"Openify does not serve the backwards invocation {call.type!r}")

    def _check(self, session: Session, call: SessionInvoke) -> None:
        """The daemon's permission checks (`backwards_invocation/permission.go`), from `resource.permission`."""
        perm = session.plugin.permissions
        model = perm.get("model") or {}
        need = {
            "llm": model.get("enabled") and model.get("llm"),
            "text_embedding": model.get("enabled") and model.get("text_embedding"),
            "rerank": model.get("enabled") and model.get("rerank"),
            "tool": (perm.get("tool") or {}).get("enabled"),
            "app": (perm.get("app") or {}).get("enabled"),
            "storage": (perm.get("storage") or {}).get("enabled"),
        }
        if call.type in need and not need[call.type]:
            raise BackwardsDenied(
                f"permission denied: {session.plugin.key} does not declare the {call.type} permission"
            )

    # --- models ------------------------------------------------------------------------------------------
    async def _llm(self, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        llm = self._host.models.llm(str(r.get("provider", "")), str(r.get("model", "")))
        request = LLMRequest(
            model=str(r.get("model", "")),
            messages=[_chat_message(m) for m in r.get("prompt_messages") or []],
            mode="completion" if r.get("mode") == "completion" else "chat",
            params=dict(r.get("completion_params") or {}),
            tools=[
                ToolSpec(str(t.get("name")), str(t.get("description", "")), t.get("parameters") or {})
                for t in r.get("tools") or []
            ],
            stop=list(r.get("stop") or []),
        )
        model = request.model
        started = time.monotonic()
        async for event in llm.stream(request):
            match event:
                case TextDelta(text=text):
                    yield _chunk(model, text)
                case ToolCallDelta(call=tc):
                    yield _chunk(model, "", [tc])
                case UsageReport(usage=usage, finish_reason=finish):
                    yield _chunk(
                        model, "", usage=_llm_usage(usage, time.monotonic() - started), finish=finish or "stop"
                    )

    async def _embedding(self, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        model = self._host.models.embedding(str(r.get("provider") or "") or None, str(r.get("model") or "") or None)
        texts = [str(t) for t in r.get("texts") or []]
        started = time.monotonic()
        vectors = await asyncio.to_thread(model.embed, texts)
        tokens = sum(len(t) for t in texts) // 4  # providers report no token count here; an estimate, priced at 0
        usage = {
            "tokens": tokens,
            "total_tokens": tokens,
            "unit_price": "0",
            "price_unit": "0",
            "total_price": "0",
            "currency": "USD",
            "latency": time.monotonic() - started,
        }
        yield {"model": model.name, "embeddings": [list(map(float, v)) for v in vectors], "usage": usage}

    async def _rerank(self, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        model = self._host.models.rerank(str(r.get("provider", "")), str(r.get("model", "")))
        docs = [str(d) for d in r.get("docs") or []]
        top_n = r.get("top_n")
        ranked = await asyncio.to_thread(model.rerank, str(r.get("query", "")), docs, int(top_n) if top_n else None)
        threshold = r.get("score_threshold")
        out = [
            {"index": i, "text": docs[i], "score": float(s)}
            for i, s in ranked
            if threshold is None or float(s) >= float(threshold)
        ]
        yield {"model": model.name, "docs": out}

    # --- tools and apps ----------------------------------------------------------------------------------
    async def _tool(self, session: Session, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        tool_type = str(r.get("tool_type") or "builtin")
        if tool_type not in ("builtin", "plugin", "mcp", "api", "workflow"):
            raise BackwardsDenied(f"unknown tool_type {tool_type!r}")
        ref = ToolRef(tool_type, str(r.get("provider", "")), str(r.get("tool", "")))  # type: ignore[arg-type]  # checked above
        call = ToolCall(user_id=session.user_id, app_id=session.app_id, conversation_id=session.conversation_id)
        async for message in self._server.invoke_tool(ref, r.get("tool_parameters") or {}, call):
            yield wire_message(message)

    async def _app(self, session: Session, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        call = ToolCall(user_id=session.user_id, app_id=session.app_id, conversation_id=session.conversation_id)
        request = {k: v for k, v in r.items() if k != "app_id"}
        async for body in self._server.invoke_app(str(r.get("app_id", "")), request, call):
            yield body

    # --- storage and files -------------------------------------------------------------------------------
    async def _storage(self, session: Session, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        plugin, key, opt = session.plugin.key, str(r.get("key", "")), r.get("opt")
        if not key or len(key) > 255:
            raise BackwardsDenied("storage keys are 1-255 characters")
        if opt == "get":
            value = await asyncio.to_thread(self._store.storage_get, plugin, key)
            if value is None:
                raise BackwardsDenied(f"storage key {key!r} does not exist")
            yield {"data": binascii.hexlify(value).decode()}
        elif opt == "set":
            try:
                value = binascii.unhexlify(str(r.get("value", "")))
            except (binascii.Error, ValueError):
                raise BackwardsDenied("storage value is not hex") from None
            limit = int(((session.plugin.permissions.get("storage") or {}).get("size")) or 0)
            used = await asyncio.to_thread(self._store.storage_size, plugin)
            if limit and used + len(value) > limit:
                raise BackwardsDenied(f"storage of {plugin} is full ({limit} bytes declared)")
            await asyncio.to_thread(self._store.storage_set, plugin, key, value)
            yield {"data": "ok"}
        elif opt == "del":
            await asyncio.to_thread(self._store.storage_delete, plugin, key)
            yield {"data": "ok"}
        elif opt == "exist":
            exists = await asyncio.to_thread(self._store.storage_get, plugin, key) is not None
            yield {"data": exists}  # the SDK returns data["data"] as its bool
        else:
            raise BackwardsDenied(f"unknown storage operation {opt!r}")

    async def _upload(self, r: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        del r  # the plugin sends filename and type again with the upload itself
        url = self._server.tool_file_upload_url(uuid.uuid4().hex)
        if not url:
            raise BackwardsDenied("file upload needs OPENIFY_FILES_URL: a base URL the plugin process can reach")
        yield {"url": url}


# ---------------------------------------------------------------------------------------------- LLM shapes


def _text_of(content: Any) -> str | list[ContentPart]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[ContentPart] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append(str(part.get("data", "")))
        elif kind == "image":
            url = part.get("url") or part.get("data") or ""
            if part.get("base64_data"):
                url = f"data:{part.get('mime_type', 'image/png')};base64,{part['base64_data']}"
            parts.append(ImagePart(str(url)))
    return parts


def _chat_message(m: Mapping[str, Any]) -> ChatMessage:
    """A prompt message of the SDK (`PromptMessage` subclasses) as Openify's ChatMessage."""
    role = str(m.get("role", "user"))
    calls = [
        ModelToolCall(
            str(c.get("id", "")),
            str((c.get("function") or {}).get("name", "")),
            _arguments((c.get("function") or {}).get("arguments")),
        )
        for c in m.get("tool_calls") or []
    ]
    return ChatMessage(
        role=role if role in ("system", "user", "assistant", "tool") else "user",  # type: ignore[arg-type]
        content=_text_of(m.get("content")),
        tool_calls=calls,
        tool_call_id=m.get("tool_call_id"),
        name=m.get("name"),
    )


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value or {}, ensure_ascii=False)


def _chunk(
    model: str,
    text: str,
    calls: Sequence[ModelToolCall] = (),
    *,
    usage: Mapping[str, Any] | None = None,
    finish: str | None = None,
) -> dict[str, Any]:
    """An `LLMResultChunk`; `usage` only when complete (the SDK refuses a usage without prices)."""
    delta: dict[str, Any] = {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": text,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
            ],
        },
        "finish_reason": finish,
    }
    if usage is not None:
        delta["usage"] = dict(usage)
    return {"model": model, "prompt_messages": [], "system_fingerprint": None, "delta": delta}


def _llm_usage(u: Usage, latency_s: float) -> dict[str, Any]:
    def money(d: Decimal) -> str:
        return str(d)

    return {
        "prompt_tokens": u.prompt_tokens,
        "prompt_unit_price": money(u.prompt_unit_price),
        "prompt_price_unit": money(u.price_unit),
        "prompt_price": money(u.prompt_price),
        "completion_tokens": u.completion_tokens,
        "completion_unit_price": money(u.completion_unit_price),
        "completion_price_unit": money(u.price_unit),
        "completion_price": money(u.completion_price),
        "total_tokens": u.total_tokens,
        "total_price": money(u.total_price),
        "currency": u.currency,
        "latency": u.latency or latency_s,
    }
