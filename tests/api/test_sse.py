"""SSE framing: compact raw-UTF-8 data frames, ping keep-alives, one error frame that ends the stream, headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from openify.api import sse
from openify.errors import CompletionRequestError


async def _collect(source: AsyncIterator[bytes]) -> list[bytes]:
    return [f async for f in source]


async def _items(
    *items: dict[str, Any], delay_s: float = 0.0, fail: Exception | None = None
) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        await asyncio.sleep(delay_s)
        yield item
    if fail is not None:
        raise fail


async def test_data_frames_are_compact_json_with_raw_non_ascii() -> None:
    out = await _collect(sse.frames(_items({"event": "message", "answer": '你好 "x"'})))
    assert out == ['data: {"event":"message","answer":"你好 \\"x\\""}\n\n'.encode()]


async def test_pings_fill_silence_without_losing_frames() -> None:
    out = await _collect(sse.frames(_items({"n": 1}, {"n": 2}, delay_s=0.25), ping_interval_s=0.1))
    data = [f for f in out if f != sse.PING]
    assert data == [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n']
    assert out.count(sse.PING) >= 3
    assert out[0] == sse.PING  # the first ping comes after one interval of silence


async def test_initial_ping_comes_first() -> None:
    out = await _collect(sse.frames(_items({"n": 1}), initial_ping=True))
    assert out == [sse.PING, b'data: {"n":1}\n\n']


async def test_an_error_becomes_one_error_frame_and_ends_the_stream() -> None:
    source = _items({"n": 1}, fail=CompletionRequestError("upstream said no"))
    out = await _collect(sse.frames(source, error_keys=lambda: {"conversation_id": "c", "message_id": "m"}))
    # Frames already waiting leave in one write; the bytes on the wire are what counts.
    assert b"".join(out) == (
        b'data: {"n":1}\n\n'
        b'data: {"event":"error","conversation_id":"c","message_id":"m","code":"completion_request_error",'
        b'"message":"upstream said no","status":400}\n\n'
    )


async def test_frames_waiting_together_leave_in_one_write() -> None:
    async def burst() -> AsyncIterator[dict[str, Any]]:  # three events ready at once, as a fast run makes them
        for n in (1, 2, 3):
            yield {"n": n}

    out = await _collect(sse.frames(burst()))
    assert out == [b'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\n']


async def test_an_unexpected_error_exposes_nothing() -> None:
    out = await _collect(sse.frames(_items(fail=RuntimeError("secret path /etc"))))
    assert out == [
        b'data: {"event":"error","code":"internal_server_error",'
        b'"message":"Internal Server Error, please contact support.","status":500}\n\n'
    ]


async def test_response_headers_and_flushing() -> None:
    app = FastAPI()

    @app.get("/s")
    def stream() -> Any:
        return sse.response(_items({"a": 1}, {"b": 2}, delay_s=0.01))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/s")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    assert r.content == b'data: {"a":1}\n\ndata: {"b":2}\n\n'


async def test_the_last_frames_leave_with_the_end_of_the_response() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        await asyncio.Event().wait()  # the client stays

    response = sse.response(_items({"n": 1}, {"n": 2}, delay_s=0.05), initial_ping=True)
    await response({"type": "http"}, receive, send)
    bodies = [(m["body"], m["more_body"]) for m in sent if m["type"] == "http.response.body"]
    # the ping at once; each frame as it comes; the last with the end of the response, in one message
    assert bodies == [(sse.PING, True), (b'data: {"n":1}\n\n', True), (b'data: {"n":2}\n\n', False)]


async def test_a_client_leaving_stops_the_stream_at_its_next_frame() -> None:
    sent: list[dict[str, Any]] = []
    left = asyncio.Event()
    closed = asyncio.Event()

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        await left.wait()
        return {"type": "http.disconnect"}

    async def endless() -> AsyncIterator[dict[str, Any]]:
        try:
            n = 0
            while True:
                n += 1
                yield {"n": n}
                await asyncio.sleep(0.02)
        finally:
            closed.set()

    task = asyncio.create_task(sse.response(endless())({"type": "http"}, receive, send))
    await asyncio.sleep(0.1)
    left.set()
    await asyncio.wait_for(task, 2)  # the response returns instead of streaming on
    assert closed.is_set()  # and its source is closed, not left running
    count = len(sent)
    await asyncio.sleep(0.1)
    assert len(sent) == count


async def test_a_client_that_does_not_read_holds_the_source_back() -> None:
    """The frames read ahead of a slow client are bounded: the source waits instead of piling up in memory."""
    produced = 0

    async def source() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        for i in range(100_000):
            produced += 1
            yield {"event": "message", "i": i}

    stream = sse.frames(source(), ping_interval_s=60)
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    assert first.startswith(b"data: ")
    await asyncio.sleep(0.2)  # the client reads nothing more meanwhile
    assert produced <= 2 * sse.QUEUE_MAX_ITEMS + 2, produced
    await stream.aclose()
