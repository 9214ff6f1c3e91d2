"""Server-sent events as model APIs send them: the JSON payload of each `data:` frame, until `[DONE]`.

Hand-written rather than httpx's aiter_lines: its text and line generators cost more per token than the
rest of the layer, and the common case (one chunk = one `data:` frame) gets a short path here
(bench/providers.py measures the layer against plain httpx).
"""

from __future__ import annotations

import json
from typing import Any

from openify.providers.failures import MalformedStream

_loads = json.loads


class SSEDecoder:
    """Feed body bytes, get the JSON objects of complete `data:` events; `event:`/`id:`/comments are skipped
    (payloads carry their own type). After `[DONE]`, `done` is set and later data is ignored."""

    __slots__ = ("_buffer", "_partial", "done")

    def __init__(self) -> None:
        self._buffer = ""
        self._partial = b""  # the start of a UTF-8 character split across chunks
        self.done = False

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        text = self._decode(chunk)
        if self._buffer:
            text = self._buffer + text
        elif text.startswith("data: ") and text.find("\n") == len(text) - 2 and text.endswith("\n\n"):
            data = text[6:-2]  # exactly one single-line frame
            if data == "[DONE]" or self.done:
                self.done = True
                return []
            return [_parse(data)]
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        *events, self._buffer = text.split("\n\n")
        out = []
        for event in events:
            if self.done:
                break
            lines = [line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:")]
            if not lines:
                continue
            data = "\n".join(lines)
            if data == "[DONE]":
                self.done = True
                break
            out.append(_parse(data))
        return out

    def flush(self) -> list[dict[str, Any]]:
        """The last event when the body ended without its blank line."""
        rest = self._buffer + self._partial.decode(errors="replace")
        self._buffer, self._partial = "", b""
        if not rest.strip():
            return []
        self._buffer = rest.rstrip("\r\n") + "\n\n"
        return self.feed(b"")

    def _decode(self, chunk: bytes) -> str:
        if self._partial:
            chunk, self._partial = self._partial + chunk, b""
        try:
            return chunk.decode()
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data":
                self._partial = chunk[exc.start :]
                return chunk[: exc.start].decode(errors="replace")
            return chunk.decode(errors="replace")


def _parse(data: str) -> dict[str, Any]:
    try:
        value = _loads(data)
    except ValueError:
        raise MalformedStream(f"invalid JSON in a stream frame: {data[:200]!r}") from None
    if type(value) is not dict:
        raise MalformedStream(f"stream frame is not a JSON object: {data[:200]!r}")
    return value
