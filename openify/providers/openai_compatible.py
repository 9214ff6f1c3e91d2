"""OpenAI's API and everything that speaks it (DeepSeek, DashScope, Moonshot, Zhipu, vLLM, Ollama, ...)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from openify.providers.base import ChatMessage, LLMRequest, TextDelta, ToolCall, ToolCallDelta
from openify.providers.clients import ClientPool
from openify.providers.config import ModelTarget
from openify.providers.failures import UpstreamStatusError
from openify.providers.http_llm import Delta, HttpLLM, StreamParser

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Dify completion_params that are not API parameters, or that Openify translates itself.
_NOT_PARAMS = frozenset({"response_format", "json_schema", "stop", "stream", "stream_options", "model", "messages"})
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
_NO_DELTAS: tuple[Delta, ...] = ()


class OpenAICompatibleLLM(HttpLLM):
    """Chat Completions (and legacy Completions for `mode: completion`) of an OpenAI-compatible API."""

    def _url(self, path: str) -> str:
        return (self.target.config.base_url or OPENAI_BASE_URL).rstrip("/") + path

    def _auth_headers(self) -> dict[str, str]:
        key = self.target.config.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    def _completion_mode(self, request: LLMRequest) -> bool:
        return request.mode == "completion" or self.target.settings.mode == "completion"

    def _prepare(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        body: dict[str, Any] = {"model": self.target.model, "stream": True, "stream_options": {"include_usage": True}}
        body.update(_params(self.target.model, request.params))
        stop = [*request.stop, *_as_list(request.params.get("stop"))]
        if stop:
            body["stop"] = stop
        if self._completion_mode(request):
            body["prompt"] = "\n\n".join(_text(m.content) for m in request.messages)
            return self._url("/completions"), self._auth_headers(), body
        body["messages"] = [_message(m) for m in request.messages]
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
                }
                for t in request.tools
            ]
        response_format = _response_format(request)
        if response_format is not None:
            body["response_format"] = response_format
        return self._url("/chat/completions"), self._auth_headers(), body

    def _new_parser(self, request: LLMRequest) -> StreamParser:
        return _CompletionParser() if self._completion_mode(request) else _ChatParser()


class _ChatParser(StreamParser):
    def __init__(self) -> None:
        super().__init__()
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]
        self._thinking = False

    def feed(self, payload: dict[str, Any]) -> Sequence[Delta]:
        usage = payload.get("usage")
        if usage:
            self.prompt_tokens, self.completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        choices = payload.get("choices")
        if not choices:
            if "error" in payload:  # an error sent inside a 200 stream
                error = payload["error"]
                message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
                raise UpstreamStatusError(500, message)
            return _NO_DELTAS
        choice = choices[0]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content and len(delta) == 1 and not self._thinking and choice.get("finish_reason") is None:
            self.text.append(content)  # the common case, one token of text: kept short for throughput
            return (TextDelta(content),)
        deltas: list[Delta] = []
        # Reasoning models (DeepSeek R1, QwQ) send their thoughts apart; Dify shows them in <think> tags.
        reasoning = delta.get("reasoning_content")
        if reasoning:
            if not self._thinking:
                self._thinking, reasoning = True, "<think>\n" + reasoning
            self.text.append(reasoning)
            deltas.append(TextDelta(reasoning))
        if content:
            if self._thinking:
                self._thinking, content = False, "\n</think>" + content
            self.text.append(content)
            deltas.append(TextDelta(content))
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for call in tool_calls:
                slot = self._calls.setdefault(call.get("index", len(self._calls)), ["", "", ""])
                function = call.get("function") or {}
                slot[0] = call.get("id") or slot[0]
                slot[1] = function.get("name") or slot[1]
                slot[2] += function.get("arguments") or ""
        finish = choice.get("finish_reason")
        if finish:
            self.finish_reason = finish
            deltas.extend(self.close())
        return deltas

    def close(self) -> Sequence[Delta]:
        calls = [
            ToolCall(id=i or f"call_{n}", name=name, arguments=args or "{}")
            for n, (i, name, args) in sorted(self._calls.items())
        ]
        self._calls.clear()
        self.tool_calls.extend(calls)
        deltas: list[Delta] = [ToolCallDelta(c) for c in calls]
        if self._thinking:  # the model went from reasoning straight to a tool call or the end
            self._thinking = False
            self.text.append("\n</think>")
            deltas.insert(0, TextDelta("\n</think>"))
        return deltas

    def feed_whole(self, body: dict[str, Any]) -> Sequence[Delta]:
        choice = (body.get("choices") or [{}])[0]
        delta = dict(choice.get("message") or {})
        for n, call in enumerate(delta.get("tool_calls") or []):
            call.setdefault("index", n)
        payload = {"choices": [{"delta": delta, "finish_reason": choice.get("finish_reason") or "stop"}]}
        return self.feed({**payload, "usage": body.get("usage")})


class _CompletionParser(StreamParser):
    def feed(self, payload: dict[str, Any]) -> Sequence[Delta]:
        usage = payload.get("usage")
        if usage:
            self.prompt_tokens, self.completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        choices = payload.get("choices")
        if not choices:
            return _NO_DELTAS
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        text = choice.get("text")
        if text:
            self.text.append(text)
            return (TextDelta(text),)
        return _NO_DELTAS

    def feed_whole(self, body: dict[str, Any]) -> Sequence[Delta]:
        return self.feed(body)  # a whole legacy completion has the shape of one stream chunk


class OpenAICompatibleEmbedding:
    """The /embeddings endpoint of an OpenAI-compatible API."""

    batch_size = 64

    def __init__(self, target: ModelTarget, clients: ClientPool) -> None:
        self.target, self._clients = target, clients
        self.name = target.model
        self._dimensions = target.settings.dimensions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.target.provider!r}, model={self.name!r})"

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = len(self.embed_query("dimensions"))
        return self._dimensions

    def _url(self) -> str:
        return (self.target.config.base_url or OPENAI_BASE_URL).rstrip("/") + "/embeddings"

    def _headers(self) -> dict[str, str]:
        return bearer_headers(self.target)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            body = {"model": self.target.model, "input": batch, "encoding_format": "float"}
            answer = self._clients.post_json(self.target, self._url(), self._headers(), body)
            rows = sorted(answer.get("data", []), key=lambda row: row.get("index", 0))
            if len(rows) != len(batch):
                raise UpstreamStatusError(502, f"expected {len(batch)} embeddings, got {len(rows)}")
            vectors.extend(_unit(row["embedding"]) for row in rows)
        if vectors and self._dimensions is None:
            self._dimensions = len(vectors[0])
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def bearer_headers(target: ModelTarget) -> dict[str, str]:
    """The Authorization header of an OpenAI-compatible provider; none for a keyless local server."""
    key = target.config.api_key
    return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}


def _unit(vector: Sequence[float]) -> list[float]:
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def _text(content: str | Sequence[Any]) -> str:
    return content if isinstance(content, str) else "".join(p for p in content if isinstance(p, str))


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, str):
        out["content"] = message.content
    else:
        out["content"] = [
            {"type": "text", "text": part}
            if isinstance(part, str)
            else {"type": "image_url", "image_url": {"url": part.url, "detail": part.detail}}
            for part in message.content
        ]
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        if not out["content"]:
            out["content"] = None
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def _params(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if k not in _NOT_PARAMS and v is not None}
    if model.startswith(_REASONING_MODELS) and "max_tokens" in out:
        out["max_completion_tokens"] = out.pop("max_tokens")  # reasoning models refuse max_tokens
    return out


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _response_format(request: LLMRequest) -> dict[str, Any] | None:
    """Structured output: the request's JSON schema, or Dify's `response_format`/`json_schema` params."""
    if request.response_format is not None:
        rf = dict(request.response_format)
        if rf.get("type") in ("json_schema", "json_object", "text"):
            return rf
        return {"type": "json_schema", "json_schema": {"name": str(rf.get("title", "output")), "schema": rf}}
    kind = request.params.get("response_format")
    if kind == "json_schema" and request.params.get("json_schema"):
        schema = request.params["json_schema"]
        schema = json.loads(schema) if isinstance(schema, str) else schema
        if "schema" not in schema:
            schema = {"name": str(schema.get("title", "output")), "schema": schema}
        return {"type": "json_schema", "json_schema": schema}
    if kind in ("json_object", "text"):
        return {"type": kind}
    if isinstance(kind, dict):
        return dict(kind)
    return None
