"""Base class of LLMs reached over HTTP with a streamed answer: retries, timing, usage and error mapping.

A provider supplies two things: the request for an LLMRequest (`_prepare`) and a per-call parser of its
stream payloads (`_new_parser`). The answer is always streamed upstream; `invoke` folds the same events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any

from openify.errors import ModelCurrentlyNotSupport
from openify.providers.base import (
    ImagePart,
    LLMEvent,
    LLMRequest,
    LLMResult,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UsageReport,
    collect,
)
from openify.providers.clients import ClientPool
from openify.providers.config import ModelTarget
from openify.providers.event_stream import SSEDecoder
from openify.providers.failures import (
    TRANSPORT_ERRORS,
    MalformedStream,
    UpstreamStatusError,
    backoff_s,
    is_retryable,
    map_provider_errors,
)
from openify.providers.usage import measure

log = logging.getLogger(__name__)

Delta = TextDelta | ToolCallDelta


class StreamParser(ABC):
    """The state of one streamed answer: turns payloads into deltas and remembers what usage needs."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None

    @abstractmethod
    def feed(self, payload: dict[str, Any]) -> Sequence[Delta]:
        """The deltas one stream payload carries (often one, sometimes none)."""

    def close(self) -> Sequence[Delta]:
        """Deltas still pending when the stream ends (tool calls never closed by a finish reason)."""
        return ()

    def feed_whole(self, body: dict[str, Any]) -> Sequence[Delta]:
        """The deltas of a whole (non-streamed) answer; providers that can get one override this."""
        raise MalformedStream(f"expected an event stream, got JSON: {str(body)[:200]}")


class HttpLLM(ABC):
    """An LLM behind an HTTP API that streams SSE. Capabilities default on; a model's `features` narrow them."""

    supports_tools: bool = True
    supports_vision: bool = True

    def __init__(self, target: ModelTarget, clients: ClientPool) -> None:
        self.target, self._clients = target, clients
        features = target.settings.features
        if features is not None:
            self.supports_tools = "tool-call" in features
            self.supports_vision = "vision" in features

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.target.provider!r}, model={self.target.model!r})"

    @abstractmethod
    def _prepare(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        """URL, headers (credentials included) and JSON body of a streamed call."""

    @abstractmethod
    def _new_parser(self, request: LLMRequest) -> StreamParser:
        """A fresh parser for one attempt."""

    async def invoke(self, request: LLMRequest) -> LLMResult:
        return await collect(self.stream(request))

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        self._refuse_unsupported(request)
        target, config = self.target, self.target.config
        url, headers, body = self._prepare(request)
        headers = {"Accept-Encoding": "identity", **headers}  # compressing a token stream only adds latency
        started, first_token = time.perf_counter(), None
        with map_provider_errors(target.provider, target.secrets):
            client = self._clients.async_client(target.provider, config)
            attempt = 0
            while True:
                parser = self._new_parser(request)
                try:
                    # Leaving this block for any reason (end, error, consumer's aclose or cancellation)
                    # closes the upstream response and with it the connection if it was not read to the end.
                    async with client.post(url, json=body, headers=headers) as response:
                        if response.status >= 400:
                            raw = await response.read()
                            raise UpstreamStatusError.from_parts(response.status, raw, response.headers, response.reason)
                        if response.headers.get("content-type", "").startswith("application/json"):
                            # A server that ignored `stream: true` (or reports an error with a 200)
                            for delta in parser.feed_whole(_json_body(await response.read())):
                                if first_token is None:
                                    first_token = time.perf_counter()
                                yield delta
                            break
                        decoder = SSEDecoder()
                        # Read to the end even after [DONE]: leaving early closes a reusable connection.
                        async for chunk in response.content.iter_any():
                            for payload in decoder.feed(chunk):
                                for delta in parser.feed(payload):
                                    if first_token is None:
                                        first_token = time.perf_counter()
                                    yield delta
                        for delta in [d for payload in decoder.flush() for d in parser.feed(payload)] + [
                            *parser.close()
                        ]:
                            if first_token is None:
                                first_token = time.perf_counter()
                            yield delta
                    break
                except (UpstreamStatusError, *TRANSPORT_ERRORS) as exc:
                    # Retrying after the first token would repeat text the consumer already has.
                    if first_token is not None or attempt >= config.max_retries or not is_retryable(exc):
                        raise
                    delay = backoff_s(attempt, config.retry_backoff_s, exc)
                    attempt += 1
                    log.info("%s: %s, retry %d in %.2fs", target.provider, type(exc).__name__, attempt, delay)
                    await asyncio.sleep(delay)
        usage = measure(
            target,
            request,
            prompt_tokens=parser.prompt_tokens,
            completion_tokens=parser.completion_tokens,
            completion_text="".join(parser.text),
            tool_calls=parser.tool_calls,
            started=started,
            first_token=first_token,
            ended=time.perf_counter(),
        )
        yield UsageReport(usage, parser.finish_reason)

    def _refuse_unsupported(self, request: LLMRequest) -> None:
        if request.tools and not self.supports_tools:
            raise ModelCurrentlyNotSupport(f"{self.target.provider}/{self.target.model} does not support tool calls.")
        if not self.supports_vision and any(
            isinstance(part, ImagePart)
            for message in request.messages
            if not isinstance(message.content, str)
            for part in message.content
        ):
            raise ModelCurrentlyNotSupport(f"{self.target.provider}/{self.target.model} does not support images.")


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise MalformedStream(f"invalid JSON answer: {raw[:200]!r}") from None
    if not isinstance(body, dict):
        raise MalformedStream(f"answer is not a JSON object: {raw[:200]!r}")
    error = body.get("error")
    if error:  # some providers report failures with status 200
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        raise UpstreamStatusError(code if isinstance(code, int) and 400 <= code < 600 else 500, message)
    return body
