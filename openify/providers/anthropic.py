"""Anthropic's Messages API (streamed), with tools, images and the system prompt apart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from openify.providers.base import ChatMessage, ImagePart, LLMRequest, TextDelta, ToolCall, ToolCallDelta
from openify.providers.failures import UpstreamStatusError
from openify.providers.http_llm import Delta, HttpLLM, StreamParser

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # required by the API; Dify's default for Claude models
_PARAMS = ("temperature", "top_p", "top_k", "metadata")
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_NO_DELTAS: tuple[Delta, ...] = ()


class AnthropicLLM(HttpLLM):
    """Claude models through /v1/messages."""

    def _prepare(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        base = (self.target.config.base_url or ANTHROPIC_BASE_URL).rstrip("/")
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.target.config.api_key:
            headers["x-api-key"] = self.target.config.api_key.get_secret_value()
        system, messages = _convert(request.messages)
        params = request.params
        body: dict[str, Any] = {
            "model": self.target.model,
            "max_tokens": int(params.get("max_tokens") or DEFAULT_MAX_TOKENS),
            "messages": messages,
            "stream": True,
        }
        body.update({k: params[k] for k in _PARAMS if params.get(k) is not None})
        stop = [*request.stop, *([params["stop"]] if isinstance(params.get("stop"), str) else params.get("stop") or [])]
        if stop:
            body["stop_sequences"] = stop
        schema = request.response_format or (
            json.loads(params["json_schema"])
            if isinstance(params.get("json_schema"), str)
            else params.get("json_schema")
        )
        if schema:
            # The Messages API has no response_format; the instruction is what Dify's structured output does too.
            system.append(
                "Answer with one JSON value only, no prose, matching this JSON schema:\n"
                + json.dumps(schema, ensure_ascii=False)
            )
        if system:
            body["system"] = "\n\n".join(system)
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in request.tools
            ]
        return url, headers, body

    def _new_parser(self, _request: LLMRequest) -> StreamParser:
        return _MessagesParser()


class _MessagesParser(StreamParser):
    def __init__(self) -> None:
        super().__init__()
        self._tools: dict[int, list[str]] = {}  # block index -> [id, name, partial JSON]
        self._thinking = False

    def feed(self, payload: dict[str, Any]) -> Sequence[Delta]:
        kind = payload.get("type")
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                text = delta["text"]
                if self._thinking:
                    self._thinking, text = False, "\n</think>" + text
                self.text.append(text)
                return (TextDelta(text),)
            if delta.get("type") == "input_json_delta" and payload.get("index") in self._tools:
                self._tools[payload["index"]][2] += delta.get("partial_json", "")
            elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                text = delta["thinking"]
                if not self._thinking:
                    self._thinking, text = True, "<think>\n" + text
                self.text.append(text)
                return (TextDelta(text),)
            return _NO_DELTAS
        if kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tools[payload.get("index", len(self._tools))] = [block.get("id", ""), block.get("name", ""), ""]
            return _NO_DELTAS
        if kind == "content_block_stop":
            slot = self._tools.pop(payload.get("index", -1), None)
            if slot is None:
                return _NO_DELTAS
            call = ToolCall(id=slot[0], name=slot[1], arguments=slot[2] or "{}")
            self.tool_calls.append(call)
            return (ToolCallDelta(call),)
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            if "input_tokens" in usage:
                self.prompt_tokens = sum(
                    int(usage.get(k) or 0)
                    for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
                )
        elif kind == "message_delta":
            reason = (payload.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reason = _FINISH.get(reason, reason)
            usage = payload.get("usage") or {}
            if "output_tokens" in usage:
                self.completion_tokens = int(usage["output_tokens"])
        elif kind == "error":
            error = payload.get("error") or {}
            status = 529 if error.get("type") == "overloaded_error" else 500
            raise UpstreamStatusError(status, str(error.get("message", error)))
        return _NO_DELTAS

    def feed_whole(self, body: dict[str, Any]) -> Sequence[Delta]:
        return [delta for event in _whole_as_events(body) for delta in self.feed(event)]

    def close(self) -> Sequence[Delta]:
        calls = [ToolCall(id=i, name=n, arguments=a or "{}") for i, n, a in self._tools.values()]
        self._tools.clear()
        self.tool_calls.extend(calls)
        return [ToolCallDelta(c) for c in calls]


def _whole_as_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole Messages answer as the stream events that would have carried it."""
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {"usage": body.get("usage") or {}}}]
    for index, block in enumerate(body.get("content") or []):
        if block.get("type") == "tool_use":
            events.append({"type": "content_block_start", "index": index, "content_block": block})
            partial = json.dumps(block.get("input") or {}, ensure_ascii=False)
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": partial},
                }
            )
            events.append({"type": "content_block_stop", "index": index})
        elif block.get("type") == "text":
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": block.get("text", "")},
                }
            )
    events.append(
        {"type": "message_delta", "delta": {"stop_reason": body.get("stop_reason")}, "usage": body.get("usage") or {}}
    )
    return events


def _convert(messages: Sequence[ChatMessage]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts apart; the rest as alternating user/assistant turns (tool results are user turns)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(
                message.content
                if isinstance(message.content, str)
                else "".join(p for p in message.content if isinstance(p, str))
            )
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # the API refuses two turns of one role in a row
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        text = (
            message.content
            if isinstance(message.content, str)
            else "".join(p for p in message.content if isinstance(p, str))
        )
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": text}]
    parts = [message.content] if isinstance(message.content, str) else list(message.content)
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            blocks.append({"type": "image", "source": _image_source(part.url)})
        elif part:
            blocks.append({"type": "text", "text": part})
    for call in message.tool_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _image_source(url: str) -> dict[str, str]:
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}
