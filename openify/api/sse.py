"""Server-Sent Events as Dify writes them: `data: <compact json>\\n\\n` frames, `event: ping` keep-alives, error frames.

Routes turn their typed events into payload mappings (one `match` per stream kind, in `api/schemas`) and hand an
async iterator of them to `response()`. This module is the only writer of `event:`/`data:` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from openify.api.errors import envelope
from openify.errors import OpenifyError

log = logging.getLogger("openify.api.sse")

MEDIA_TYPE = "text/event-stream"
# no-cache and X-Accel-Buffering stop proxies (nginx) from holding frames back.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PING = b"event: ping\n\n"
PING_INTERVAL_S = 10.0  # Dify's queue pings every 10 s of elapsed time

Payload = Mapping[str, Any]
ErrorKeys = Callable[[], Mapping[str, Any]]


def encode(payload: Payload) -> bytes:
    """One data frame. Compact JSON with non-ASCII raw, as Dify's orjson output."""
    return b"data: " + orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS) + b"\n\n"


def error_payload(exc: BaseException, **keys: Any) -> dict[str, Any]:
    """`{"event": "error", **keys, code, message, status}`; Dify's error events carry no `task_id`."""
    body = envelope(exc)
    body.pop("params", None)
    return {"event": "error", **keys, **body}


def error_frame(exc: BaseException, **keys: Any) -> bytes:
    return encode(error_payload(exc, **keys))


async def frames(
    source: AsyncIterator[Payload],
    *,
    ping_interval_s: float = PING_INTERVAL_S,
    initial_ping: bool = False,
    error_keys: ErrorKeys | None = None,
) -> AsyncIterator[bytes]:
    """Encode `source`, adding a ping every `ping_interval_s` of elapsed time and turning an exception into one
    error frame that ends the stream. The source is read by a task of its own, so a ping never cancels it."""
    if initial_ping:
        yield PING
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait((0, item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes the stream's error frame
            queue.put_nowait((1, exc))
            return
        queue.put_nowait((2, None))

    task = asyncio.create_task(pump())
    next_ping = time.monotonic() + ping_interval_s
    try:
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_ping - time.monotonic())):
                    kind, item = await queue.get()
            except TimeoutError:
                next_ping += ping_interval_s
                yield PING
                continue
            # Everything already queued goes out in one write: a socket write per frame was the largest
            # cost of streaming a fast workflow (bench/workflow.py).
            chunk: list[bytes] = []
            while True:
                if kind == 2:
                    break
                if kind == 1:
                    if not isinstance(item, OpenifyError):
                        log.error("stream failed", exc_info=item)
                    chunk.append(error_frame(item, **(error_keys() if error_keys else {})))
                    break
                chunk.append(encode(item))
                if queue.empty():
                    break
                kind, item = queue.get_nowait()
            if chunk:
                yield b"".join(chunk)
            if kind in (1, 2):
                return
            if time.monotonic() >= next_ping:
                next_ping += ping_interval_s
                yield PING
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def response(
    source: AsyncIterator[Payload],
    *,
    ping_interval_s: float = PING_INTERVAL_S,
    initial_ping: bool = False,
    error_keys: ErrorKeys | None = None,
) -> StreamingResponse:
    """A `text/event-stream` response of `source`, flushed frame by frame."""
    body = frames(source, ping_interval_s=ping_interval_s, initial_ping=initial_ping, error_keys=error_keys)
    return StreamingResponse(body, media_type=MEDIA_TYPE, headers=HEADERS)
