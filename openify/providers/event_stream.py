"""Server-sent events as model APIs send them: the JSON payload of each `data:` frame, until `[DONE]`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from openify.providers.failures import MalformedStream


async def iter_sse_json(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Yield each data frame's JSON object; `event:`, `id:` and comment lines are skipped (payloads carry a type)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif not line and data:
            payload = data[0] if len(data) == 1 else "\n".join(data)
            data = []
            if payload == "[DONE]":
                return
            yield _parse(payload)
    if data and (payload := "\n".join(data)) != "[DONE]":
        yield _parse(payload)


def _parse(payload: str) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        raise MalformedStream(f"invalid JSON in a stream frame: {payload[:200]!r}") from None
    if not isinstance(value, dict):
        raise MalformedStream(f"stream frame is not a JSON object: {payload[:200]!r}")
    return value
