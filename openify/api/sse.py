"""Server-Sent Events as Dify writes them: `data: <compact json>\\n\\n` frames, `event: ping` keep-alives, error frames.

Routes turn their typed events into payload mappings (one `match` per stream kind, in `api/schemas`) and hand an
async iterator of them to `response()`. This module is the only writer of `event:`/`data:` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from openify.api.errors import envelope
from openify.engine.events import as_json_object
from openify.errors import OpenifyError

log = logging.getLogger("openify.api.sse")

MEDIA_TYPE = "text/event-stream"
# no-cache and X-Accel-Buffering stop proxies (nginx) from holding frames back.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PING = b"event: ping\n\n"
PING_INTERVAL_S = 10.0  # Dify's queue pings every 10 s of elapsed time
_ITEM, _FAIL, _END, _PING = range(4)  # what `frames` finds in its queue
# Items read ahead of the client: a client that reads slowly (or not at all) holds the source back here
# instead of making the queue grow without bound; the run behind the source goes on and keeps its events.
QUEUE_MAX_ITEMS = 256

Payload = Mapping[str, Any]
Frames = bytes  # frames already encoded, passed through as they are
ErrorKeys = Callable[[], Mapping[str, Any]]


class LastFrames(bytes):
    """A stream's final frames: the response sends them with its end, in one write."""


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=as_json_object)
    except orjson.JSONEncodeError:
        # Non-string keys (a code node's int-keyed dict) are rare; the option slows every call by a third.
        return orjson.dumps(value, default=as_json_object, option=orjson.OPT_NON_STR_KEYS)


def encode(payload: Payload) -> bytes:
    """One data frame. Compact JSON with non-ASCII raw, as Dify's orjson output."""
    return b"data: " + _dumps(payload) + b"\n\n"


def frame_head(top: Payload) -> bytes:
    """The start of a frame whose `data` object follows: `data: {<top's members>,"data":`. A stream computes it
    once per event name and completes it itself, instead of encoding the same members per frame."""
    return b"data: " + _dumps(top)[:-1] + b',"data":'


def error_payload(exc: BaseException, **keys: Any) -> dict[str, Any]:
    """`{"event": "error", **keys, code, message, status}`; Dify's error events carry no `task_id`."""
    body = envelope(exc)
    body.pop("params", None)
    return {"event": "error", **keys, **body}


def error_frame(exc: BaseException, **keys: Any) -> bytes:
    return encode(error_payload(exc, **keys))


async def frames(
    source: AsyncIterator[Payload | Frames],
    *,
    ping_interval_s: float = PING_INTERVAL_S,
    initial_ping: bool = False,
    error_keys: ErrorKeys | None = None,
) -> AsyncIterator[bytes]:
    """Encode `source` (payloads, or frames already encoded), adding a ping every `ping_interval_s` of elapsed
    time and turning an exception into one error frame that ends the stream. The source is read by a task of its
    own, so a ping never cancels it."""
    if initial_ping:
        yield PING
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue(QUEUE_MAX_ITEMS)
    loop = asyncio.get_running_loop()

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((_ITEM, item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes the stream's error frame
            await queue.put((_FAIL, exc))
            return
        await queue.put((_END, None))

    timer: asyncio.TimerHandle | None = None

    def ping() -> None:
        nonlocal timer
        if not queue.full():  # a full queue has frames to send: the client hears from the stream anyway
            queue.put_nowait((_PING, None))
        timer = loop.call_later(ping_interval_s, ping)

    # One timer for the pings, not a timeout per frame: cancelled timeouts piled up in the loop's heap.
    timer = loop.call_later(ping_interval_s, ping)
    task = asyncio.create_task(pump())
    try:
        while True:
            kind, item = await queue.get()
            # Everything already queued goes out in one write: a socket write per frame was the largest
            # cost of streaming a fast workflow (bench/workflow.py).
            chunk: list[bytes] = []
            while kind == _ITEM:
                chunk.append(item if type(item) is bytes else encode(item))
                if queue.empty():
                    break
                kind, item = queue.get_nowait()
            if kind == _FAIL:
                if not isinstance(item, OpenifyError):
                    log.error("stream failed", exc_info=item)
                chunk.append(error_frame(item, **(error_keys() if error_keys else {})))
            if chunk:
                done = kind in (_FAIL, _END)
                yield LastFrames(b"".join(chunk)) if done else b"".join(chunk)
            if kind == _PING:
                yield PING
            elif kind != _ITEM:
                return
    finally:
        if timer is not None:
            timer.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response. Starlette runs every stream in an anyio task group beside a disconnect
    listener when the server speaks ASGI < 2.4, as uvicorn does: about 50 us per response. Here one plain task
    watches for the client leaving, and the stream stops at its next frame; the run behind it goes on either way.
    `LastFrames` go out with the response's end, in one write."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002 - ASGI signature
        async def client_left() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(client_left())
        body = self.body_iterator
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in body:
                if watcher.done():
                    return
                last = type(chunk) is LastFrames
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                if last:
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if watcher.done() and not watcher.cancelled():
                watcher.exception()  # a receive that failed ends the stream like a client that left
            watcher.cancel()
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


def response(
    source: AsyncIterator[Payload | Frames],
    *,
    ping_interval_s: float = PING_INTERVAL_S,
    initial_ping: bool = False,
    error_keys: ErrorKeys | None = None,
) -> StreamingResponse:
    """A `text/event-stream` response of `source`, flushed frame by frame."""
    body = frames(source, ping_interval_s=ping_interval_s, initial_ping=initial_ping, error_keys=error_keys)
    return EventStreamResponse(body, media_type=MEDIA_TYPE, headers=HEADERS)
