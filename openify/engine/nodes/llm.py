"""`llm`: chat or completion prompts (basic or Jinja2), memory, context, vision, structured output.
Its text streams to Answer/End nodes that show it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from jinja2 import TemplateError

from openify.engine.model_calls import (
    CallResult,
    ModelSpec,
    clean_prompt,
    history,
    history_text,
    image_parts,
    resolve,
    stream_call,
    vision_parts,
    with_parts,
)
from openify.engine.node import (
    Node,
    NodeContext,
    NodeError,
    NodeResult,
    StreamChunk,
    selector,
    usage_dict,
    usage_metadata,
)
from openify.engine.nodes.template_transform import jinja_env, variables
from openify.engine.variables import files_in, template_selectors, to_text
from openify.providers.base import ChatMessage, LLMRequest, Role


def split_think(text: str) -> tuple[str, list[str]]:
    """The text without its `<think>…</think>` blocks (and the blanks after each), and the blocks' contents.

    A scan, not the regex `<think>(.*?)</think>\\s*`: that one rescans to the end from every `<think>` when no
    `</think>` follows, quadratic on a reply that repeats the tag.
    """
    out, found, pos = [], [], 0
    start = text.find("<think>")
    while start != -1:
        close = text.find("</think>", start + 7)
        if close == -1:
            break
        out.append(text[pos:start])
        found.append(text[start + 7 : close])
        pos = close + 8
        while pos < len(text) and text[pos].isspace():
            pos += 1
        start = text.find("<think>", pos)
    out.append(text[pos:])
    return "".join(out), found


_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}


def context_text(value: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """The `{{#context#}}` text and the cited records of a context variable (a string or retrieval results)."""
    if value is None:
        return "", []
    if isinstance(value, str):
        return value, []
    if isinstance(value, list):
        texts, resources = [], []
        for item in value:
            if isinstance(item, Mapping) and "content" in item:
                texts.append(str(item["content"]))
                if (item.get("metadata") or {}).get("_source") == "knowledge":
                    resources.append(item)
            elif isinstance(item, str):
                texts.append(item)
        return "\n".join(texts), resources
    return to_text(value), []


def parse_json_reply(text: str) -> Any:
    """A JSON value from a model reply, tolerating code fences and text around it."""
    stripped = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    if fence:
        stripped = fence.group(1).strip()
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):  # a reply of many `[` nests past Python's recursion limit
        pass
    start, end = stripped.find("{"), stripped.rfind("}")
    if start != -1 and end > start:
        try:
            return json.loads(stripped[start : end + 1])
        except (ValueError, RecursionError):
            return None
    return None


class _ThinkFilter:
    """Drops `<think>…</think>` from streamed text (reasoning_format `separated`), tags split across chunks."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.pending, self.inside = "", False

    def feed(self, text: str) -> str:
        self.pending += text
        out = []
        while self.pending:
            tag = self.CLOSE if self.inside else self.OPEN
            at = self.pending.find(tag)
            if at >= 0:
                if not self.inside:
                    out.append(self.pending[:at])
                self.pending, self.inside = self.pending[at + len(tag) :], not self.inside
                continue
            keep = next((n for n in range(len(tag) - 1, 0, -1) if self.pending.endswith(tag[:n])), 0)
            if not self.inside:
                out.append(self.pending[: len(self.pending) - keep])
            self.pending = self.pending[len(self.pending) - keep :]
            break
        return "".join(out)


class LLMNode(Node):
    type = "llm"

    def _render(
        self, ctx: NodeContext, item: Mapping[str, Any], literals: Mapping[str, str], jinja: Mapping[str, Any]
    ) -> str:
        if item.get("edition_type") == "jinja2":
            try:
                return jinja_env().from_string(str(item.get("jinja2_text") or "")).render(**jinja)
            except TemplateError as exc:
                raise NodeError(f"Prompt template error: {exc}", "TemplateError") from exc
        # References and the context (and histories) are filled in one pass: a retrieved chunk or a past turn
        # that holds `{{#env.KEY#}}` is inserted as text, never filled. Dify inserts the context first and
        # then fills references, which lets a chunk pull a secret into the prompt.
        return clean_prompt(ctx.pool.render(str(item.get("text") or ""), literals=literals))

    async def build(self, ctx: NodeContext, spec: ModelSpec) -> tuple[list[ChatMessage], dict[str, Any]]:
        d = self.data
        ctx_cfg = d.get("context") or {}
        context, resources = "", list[Mapping[str, Any]]()
        if isinstance(ctx_cfg, Mapping) and ctx_cfg.get("enabled"):
            context, resources = context_text(ctx.pool.get(selector(ctx_cfg.get("variable_selector"))))
        jinja = {name: ctx.pool.get(sel) for name, sel in variables(d.get("prompt_config") or {}, "jinja2_variables")}
        memory = d.get("memory")
        past = await history(ctx, memory, spec)
        query = ""
        if isinstance(memory, Mapping):
            tpl = memory.get("query_prompt_template")
            query = ctx.pool.render(str(tpl)) if tpl else str(ctx.pool.get(["sys", "query"]) or "")
        images = await vision_parts(ctx, d.get("vision"))
        template = d.get("prompt_template") or []
        messages: list[ChatMessage] = []
        if spec.mode == "completion" or isinstance(template, Mapping):
            item = template if isinstance(template, Mapping) else {"text": ""}
            prefixes = (memory or {}).get("role_prefix") or {} if isinstance(memory, Mapping) else {}
            hist = history_text(past, prefixes.get("user") or "Human", prefixes.get("assistant") or "Assistant")
            text = self._render(ctx, item, {"context": context, "histories": hist}, jinja)
            if hist and "{{#histories#}}" not in str(item.get("text") or ""):
                text = f"{hist}\n{text}"
            if query and "{{#sys.query#}}" not in str(item.get("text") or ""):
                text = f"{text}\n{query}" if text else query
            messages.append(with_parts(ChatMessage("user", text), images))
        else:
            for item in template:
                if not isinstance(item, Mapping):
                    continue
                role = _ROLES.get(str(item.get("role") or "user"), "user")
                message = ChatMessage(role, self._render(ctx, item, {"context": context}, jinja))
                if role == "user" and item.get("edition_type") != "jinja2":
                    # image variables referenced in a basic prompt become image parts of that message
                    refs = [
                        f
                        for sel in template_selectors(str(item.get("text") or ""))
                        for f in files_in(ctx.pool.get(sel))
                    ]
                    message = with_parts(message, await image_parts(ctx, refs))
                messages.append(message)
            messages.extend(past)
            if query:
                messages.append(ChatMessage("user", query))
            if images:
                last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
                if last_user is None:
                    messages.append(with_parts(ChatMessage("user", ""), images))
                else:
                    messages[last_user] = with_parts(messages[last_user], images)
        process = {
            "model_mode": spec.mode,
            "model_provider": spec.provider,
            "model_name": spec.name,
            "prompts": [
                {
                    "role": m.role,
                    "text": m.content
                    if isinstance(m.content, str)
                    else "".join(p for p in m.content if isinstance(p, str)),
                }
                for m in messages
            ],
        }
        if resources:
            process["retriever_resources"] = resources
        return messages, process

    async def stream(self, ctx: NodeContext) -> AsyncIterator[Any]:
        d = self.data
        spec = ModelSpec.of(d)
        llm = resolve(ctx, spec)
        messages, process = await self.build(ctx, spec)
        response_format = None
        structured = bool(d.get("structured_output_enabled")) and isinstance(d.get("structured_output"), Mapping)
        if structured:
            schema = (d.get("structured_output") or {}).get("schema") or {"type": "object"}
            response_format = {"type": "json_schema", "json_schema": {"name": "structured_output", "schema": schema}}
        request = LLMRequest(
            model=spec.name,
            messages=messages,
            mode="completion" if spec.mode == "completion" else "chat",
            params=spec.params,
            stop=list(spec.stop),
            response_format=response_format,
        )
        result = CallResult()
        hide = _ThinkFilter() if d.get("reasoning_format") == "separated" else None
        async for chunk in stream_call(llm, request, result, (self.id, "text")):
            if hide is None:
                yield chunk
            elif shown := hide.feed(chunk.text):
                yield StreamChunk(chunk.selector, shown)
        text, reasoning = result.text, ""
        if d.get("reasoning_format") == "separated":
            stripped, found = split_think(text)
            if found:
                reasoning = "\n".join(s.strip() for s in found)
                text = stripped
        outputs: dict[str, Any] = {
            "text": text,
            "reasoning_content": reasoning,
            "usage": usage_dict(result.usage),
            "finish_reason": result.finish_reason,
        }
        if structured:
            parsed = parse_json_reply(result.text)
            if not isinstance(parsed, Mapping):
                raise NodeError("The model's reply is not the JSON object the structured output needs.", "LLMNodeError")
            outputs["structured_output"] = dict(parsed)
        process["usage"] = outputs["usage"]
        yield NodeResult(outputs=outputs, process_data=process, metadata=usage_metadata(result.usage))


def register(r: Any) -> None:
    r.nodes.register(LLMNode.type, LLMNode)
