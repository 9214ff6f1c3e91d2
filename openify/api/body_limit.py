"""A size limit on every request body, enforced before anything parses or authenticates it.

Without it a 200 MB JSON body with a wrong key was parsed (the server grew by 378 MB) before the 401. Dify sits
behind nginx, whose `client_max_body_size` refuses large bodies before its API reads a byte; this pure ASGI
middleware does the same in-process: a declared Content-Length over the limit is answered at once, and a body
without one (chunked) is counted as it streams and cut off at the limit. Starlette has no body limit of its own
(python-multipart's limits cover parts, not the whole body), hence this module.
"""

from __future__ import annotations

import asyncio

import regex  # type: ignore[import-untyped]  # no stubs; releases the GIL while it scans (concurrent=True)
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openify.api.errors import error_response
from openify.errors import FileTooLarge
from openify.settings import Settings

_MB = 1024 * 1024

# Werkzeug's RequestEntityTooLarge, as Dify's error handler renders it: code from the class name, its description.
_TOO_LARGE = {
    "code": "request_entity_too_large",
    "message": "The data value transmitted exceeds the capacity limit.",
    "status": 413,
}


def body_limits(settings: Settings) -> dict[str, int]:
    """BodyLimit's arguments: OPENIFY_REQUEST__MAX_BODY_MB, and for multipart bodies the largest upload limit
    plus 1 MB of form fields and part headers (each upload route then checks its own type's limit)."""
    u = settings.upload
    largest = max(
        u.file_size_limit_mb, u.image_file_size_limit_mb, u.audio_file_size_limit_mb, u.video_file_size_limit_mb
    )
    return {"max_body_bytes": settings.request.max_body_mb * _MB, "max_upload_bytes": (largest + 1) * _MB}


# FastAPI parses JSON bodies on the event loop, and the time goes with the number of values, not bytes: 1 MB of
# `[1,1,...]` takes 30-150 ms. A body with more values than this is refused before it is parsed; one that passes
# parses in a few ms. The values are counted without parsing: strings blanked out by a regex that releases the
# GIL (json.loads in a thread would not: it holds the GIL as long as on the loop), then commas and brackets.
MAX_JSON_VALUES = 50_000
_JSON_STRING = regex.compile(rb'"(?:[^"\\]|\\.)*+"')


class _BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes the limit."""


def _json_values(body: bytes) -> int:
    """At least how many values a JSON body holds: each but the first follows a comma or opens a container
    (keys count too, which only makes the bound safer). Runs in a thread, off the loop and off the GIL."""
    bare = _JSON_STRING.sub(b'""', body, concurrent=True)
    return bare.count(b",") + bare.count(b"[") + bare.count(b"{") + 1


def _is_json(content_type: bytes) -> bool:
    main = content_type.split(b";", 1)[0].strip().lower()
    return main == b"application/json" or (main.startswith(b"application/") and main.endswith(b"+json"))


class BodyLimit:
    """Refuse bodies over `max_body_bytes` (413 request_entity_too_large), or over `max_upload_bytes` for
    multipart uploads (413 file_too_large, as an upload over its own limit is answered)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app, self.max_body_bytes, self.max_upload_bytes = app, max_body_bytes, max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type, declared = b"", None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        upload = content_type[:10].lower() == b"multipart/"
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, upload, limit)
            return
        if _is_json(content_type) and declared != 0:
            await self._json(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if started:  # a streaming route read its body after answering: nothing more can be said
                raise
            await _refuse(scope, receive, send, upload, limit)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read a JSON body whole (within the limit), vet its size in values, then hand it on."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, receive, send, False, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # Each value but the first follows a comma or opens a container: few of these bytes, few values.
        bound = body.count(b",") + body.count(b"[") + body.count(b"{") + 1
        if bound > MAX_JSON_VALUES and await asyncio.to_thread(_json_values, body) > MAX_JSON_VALUES:
            # 413, as for a body over the byte limit: both are "more than this server parses in one request"
            text = f"The JSON body holds more than {MAX_JSON_VALUES:,} values."
            await JSONResponse({**_TOO_LARGE, "message": text}, status_code=413)(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, for streaming routes

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, upload: bool, limit: int) -> None:
    if upload:
        response = error_response(FileTooLarge(f"The upload is over the limit of {limit // _MB} MB."))
    else:
        response = JSONResponse(_TOO_LARGE, status_code=413)
    # The client may still be sending: closing the connection stops it rather than reading the rest.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
