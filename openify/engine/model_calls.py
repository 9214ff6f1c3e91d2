"""What the LLM-calling nodes share: model lookup, memory, vision parts, and one streamed call."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openify.engine.node import NodeContext, NodeError, StreamChunk, selector
from openify.engine.variables import files_in
from openify.providers.base import (
    LLM,
    ChatMessage,
    ContentPart,
    ImagePart,
    LLMRequest,
    ModelResolver,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageReport,
    context_size,
)
from openify.tokens import count_tokens


def clean_prompt(text: str) -> str:
    """The text without `<|...|>` special tokens on one line, as Dify strips them from rendered prompts.

    Dify uses the regex `<\\|.*?\\|>`, which is quadratic on many `<|` without a `|>` (80k characters took 16 s
    on the event loop); this scan gives the same result in linear time: each `<|` pairs with the nearest
    following `|>` on its line, and the positions of the next `|>` and newline are found once, not per `<|`.
    """
    if "<|" not in text:
        return text
    out: list[str] = []
    pos = 0  # text[:pos] is done
    close = newline = -1  # the next `|>` and newline at or after the last search start (-1: none left)
    start = text.find("<|")
    while start != -1:
        if close != len(text) and close < start + 2:
            found = text.find("|>", start + 2)
            close = len(text) if found == -1 else found
        if close == len(text):
            break  # no `|>` after this `<|`, so none after any later one either
        if newline != len(text) and newline < start + 2:
            found = text.find("\n", start + 2)
            newline = len(text) if found == -1 else found
        if newline < close:  # no token can start before the newline and end after it
            start = text.find("<|", newline + 1)
            continue
        out.append(text[pos:start])
        pos = close + 2
        start = text.find("<|", pos)
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    name: str
    mode: str
    params: Mapping[str, Any]
    stop: Sequence[str]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ModelSpec:
        model = data.get("model") or {}
        if not isinstance(model, Mapping) or not model.get("name"):
            raise NodeError("The node has no model configured.", "ModelNotExist")
        params = dict(model.get("completion_params") or {})
        stop = params.pop("stop", None) or ()
        return cls(str(model.get("provider") or ""), str(model["name"]), str(model.get("mode") or "chat"), params, stop)


def resolve(ctx: NodeContext, spec: ModelSpec) -> LLM:
    models: ModelResolver = ctx.require("models")
    return models.llm(spec.provider, spec.name)  # raises ProviderNotInitialized: the node fails with it


async def history(ctx: NodeContext, memory: Any, spec: ModelSpec) -> list[ChatMessage]:
    """Past turns for a node's `memory` setting (chatflows only): the window's turns, then as many of the newest
    messages as fit in the tokens the node's model leaves for them."""
    if not isinstance(memory, Mapping) or ctx.run.mode != "advanced-chat" or not ctx.run.conversation_id:
        return []
    port = ctx.ports.history
    if port is None:
        return []
    window = memory.get("window") or {}
    limit = int(window.get("size") or 50) if window.get("enabled") else 500
    messages = list(await port.messages(ctx.run.conversation_id, limit))
    return fit_memory(messages, memory_budget(resolve(ctx, spec), spec))


def memory_budget(llm: LLM, spec: ModelSpec) -> int:
    """The tokens memory may take, as Dify reckons them for a node (`_calculate_rest_token` with no prompt yet):
    the model's context size less the answer's max_tokens."""
    max_tokens = spec.params.get("max_tokens") or spec.params.get("max_tokens_to_sample") or 0
    return max(context_size(llm) - int(max_tokens), 0)


def _tokens(message: ChatMessage) -> int:
    content = message.content
    return count_tokens(content if isinstance(content, str) else "".join(p for p in content if isinstance(p, str)))


def fit_memory(messages: Sequence[ChatMessage], budget: int) -> list[ChatMessage]:
    """Dify's TokenBufferMemory: while the messages take more than `budget` tokens, the oldest goes, one message at
    a time; the newest always stays."""
    kept = list(messages)
    total = sum(_tokens(m) for m in kept)
    while total > budget and len(kept) > 1:
        total -= _tokens(kept.pop(0))
    return kept


def history_text(
    messages: Sequence[ChatMessage], user_prefix: str = "Human", assistant_prefix: str = "Assistant"
) -> str:
    lines = []
    for m in messages:
        prefix = user_prefix if m.role == "user" else assistant_prefix
        text = m.content if isinstance(m.content, str) else "".join(p for p in m.content if isinstance(p, str))
        lines.append(f"{prefix}: {text}")
    return "\n".join(lines)


async def vision_parts(ctx: NodeContext, vision: Any) -> list[ContentPart]:
    """Image parts of the files a node's `vision` setting names (default `sys.files`)."""
    if not isinstance(vision, Mapping) or not vision.get("enabled"):
        return []
    configs = vision.get("configs") or {}
    sel = selector(configs.get("variable_selector")) or ["sys", "files"]
    return await image_parts(ctx, files_in(ctx.pool.get(sel)), str(configs.get("detail") or "high"))


async def image_parts(ctx: NodeContext, files: Sequence[Mapping[str, Any]], detail: str = "high") -> list[ContentPart]:
    """Image files as model input parts: their URL, or a data: URL of their bytes from the file port."""
    parts: list[ContentPart] = []
    for f in files:
        if f.get("type") != "image":
            continue
        url = str(f.get("remote_url") or f.get("url") or "")
        # Our own files go as their bytes: their signed links may be relative, or unreachable from the provider.
        ours = f.get("transfer_method") in ("local_file", "tool_file")
        if (ours or not url.startswith(("http://", "https://", "data:"))) and ctx.ports.files is not None:
            data = await ctx.ports.files.read(f, ctx.run.system.user_id)
            url = f"data:{f.get('mime_type') or 'image/png'};base64,{base64.b64encode(data).decode()}"
        if url:
            parts.append(ImagePart(url, "low" if detail == "low" else "high"))
    return parts


@dataclass
class CallResult:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


async def stream_call(
    llm: LLM, request: LLMRequest, result: CallResult, chunk_selector: tuple[str, ...] | None
) -> AsyncIterator[StreamChunk]:
    """Stream one call into `result`, yielding text chunks under `chunk_selector` (None: stream nothing)."""
    parts: list[str] = []
    async for ev in llm.stream(request):
        if isinstance(ev, TextDelta):
            parts.append(ev.text)
            if chunk_selector is not None and ev.text:
                yield StreamChunk(chunk_selector, ev.text)
        elif isinstance(ev, ToolCallDelta):
            result.tool_calls.append(ev.call)
        elif isinstance(ev, UsageReport):
            result.usage, result.finish_reason = ev.usage, ev.finish_reason
    result.text = "".join(parts)


async def invoke(llm: LLM, request: LLMRequest) -> CallResult:
    result = CallResult()
    async for _ in stream_call(llm, request, result, None):
        pass
    return result


def with_parts(message: ChatMessage, parts: Sequence[ContentPart]) -> ChatMessage:
    if not parts:
        return message
    text = message.content if isinstance(message.content, str) else ""
    content: list[ContentPart] = [text, *parts] if text else list(parts)
    return ChatMessage(message.role, content)
