"""Provider failures: the one mapping from upstream errors to Dify's codes, and when to retry.

Dify (api/core/model_runtime/model_providers/__base/ai_model.py) folds every invoke failure into an
InvokeError, which the Service API reports as `completion_request_error`; invalid credentials
(InvokeAuthorizationError) included. Openify keeps that, except that rate limits and exhausted quotas
(429, 402) become `provider_quota_exceeded`, so a client can tell "try later" from "broken".
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import aiohttp
import httpx

from openify.errors import CompletionRequestError, OpenifyError, ProviderQuotaExceeded

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_RETRY_AFTER_S = 30.0


class UpstreamStatusError(Exception):
    """The provider answered with an error status (or an error event inside a stream)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.retry_after_s = status, message, retry_after_s

    @classmethod
    def from_response(cls, response: httpx.Response) -> UpstreamStatusError:
        """Build from a read error response: the provider's own message if its body has one."""
        return cls.from_parts(response.status_code, response.content, response.headers, response.reason_phrase)

    @classmethod
    def from_parts(cls, status: int, body: bytes, headers: Mapping[str, str], reason: str | None) -> UpstreamStatusError:
        """Build from the status, body and headers of an error response of either HTTP client."""
        return cls(status, _upstream_message(body, reason or ""), _retry_after_s(headers))


class MalformedStream(Exception):
    """A stream frame that is not the JSON the protocol promises."""


# What counts as a transport failure (connection refused or cut, timeout) for each HTTP client in use:
# the async path streams with aiohttp, the sync path (embeddings, rerank) posts with httpx.
TRANSPORT_ERRORS = (httpx.TransportError, aiohttp.ClientError, asyncio.TimeoutError)


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, server errors and connection failures; never a bad request or bad credentials."""
    if isinstance(exc, UpstreamStatusError):
        return exc.status in _RETRY_STATUSES
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in _RETRY_STATUSES
    return isinstance(exc, TRANSPORT_ERRORS)


def backoff_s(attempt: int, base_s: float, exc: BaseException) -> float:
    """Seconds to wait before retry number `attempt` (0-based): Retry-After when sent, else jittered doubling."""
    if isinstance(exc, UpstreamStatusError) and exc.retry_after_s is not None:
        return min(exc.retry_after_s, _MAX_RETRY_AFTER_S)
    return float(base_s * 2**attempt * random.uniform(0.5, 1.0))  # noqa: S311  jitter, not cryptography


@contextmanager
def map_provider_errors(provider: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Turn httpx and upstream failures into OpenifyErrors with Dify's codes; scrub credentials from messages."""
    try:
        yield
    except OpenifyError:
        raise
    except UpstreamStatusError as exc:
        raise _for_status(provider, exc.status, _scrub(exc.message, secrets)) from exc
    except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
        raise CompletionRequestError(f"[{provider}] Request timed out ({type(exc).__name__}).") from exc
    except (httpx.TransportError, aiohttp.ClientError) as exc:
        raise CompletionRequestError(
            f"[{provider}] Connection error: {type(exc).__name__}: {_scrub(str(exc), secrets)}"
        ) from exc
    except MalformedStream as exc:
        raise CompletionRequestError(f"[{provider}] Malformed response: {_scrub(str(exc), secrets)}") from exc
    except httpx.HTTPError as exc:
        raise CompletionRequestError(f"[{provider}] {type(exc).__name__}: {_scrub(str(exc), secrets)}") from exc


def _for_status(provider: str, status: int, message: str) -> OpenifyError:
    if status in (402, 429):
        return ProviderQuotaExceeded(f"[{provider}] Rate limit or quota exceeded, error code {status}: {message}")
    if status in (401, 403):
        return CompletionRequestError(f"[{provider}] Invalid credentials or no access, error code {status}: {message}")
    if 500 <= status:
        return CompletionRequestError(f"[{provider}] Server unavailable, error code {status}: {message}")
    return CompletionRequestError(f"[{provider}] Bad request, error code {status}: {message}")


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _upstream_message(body: bytes, reason: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace") or reason
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(error, dict):
        return str(error.get("message") or error.get("msg") or parsed)[:500]
    return str(error)[:500]


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from model APIs, the jittered backoff is good enough
