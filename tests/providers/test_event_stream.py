"""SSEDecoder: frames split anywhere, CRLF, multi-line data, comments, [DONE], malformed JSON."""

from __future__ import annotations

import json

import pytest

from openify.providers.event_stream import SSEDecoder
from openify.providers.failures import MalformedStream

BODY = (
    ": keep-alive comment\n\n"
    'event: message_start\ndata: {"type": "start", "text": "你好"}\n\n'
    'data: {"a": 1}\r\n\r\n'
    'data: {"multi":\ndata: "line"}\n\n'
    "id: 7\nretry: 100\n\n"
    'data:{"tight": true}\n\n'
    "data: [DONE]\n\n"
    'data: {"after": "done"}\n\n'
).encode()
EXPECTED = [{"type": "start", "text": "你好"}, {"a": 1}, {"multi": "line"}, {"tight": True}]


def decode_in_pieces(body: bytes, size: int) -> tuple[list[dict[str, object]], bool]:
    decoder = SSEDecoder()
    out = []
    for start in range(0, len(body), size):
        out += decoder.feed(body[start : start + size])
    out += decoder.flush()
    return out, decoder.done


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
def test_any_chunking_gives_the_same_payloads(size: int) -> None:
    assert decode_in_pieces(BODY, size) == (EXPECTED, True)


def test_single_frame_chunks_take_the_short_path_and_stop_at_done() -> None:
    decoder = SSEDecoder()
    frames = [f"data: {json.dumps({'i': i})}\n\n".encode() for i in range(3)] + [b"data: [DONE]\n\n"]
    assert [p for f in frames for p in decoder.feed(f)] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert decoder.done and decoder.feed(b'data: {"i": 9}\n\n') == []


def test_last_event_without_blank_line_is_flushed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"x": 1}\n') == []
    assert decoder.flush() == [{"x": 1}]


@pytest.mark.parametrize("frame", [b"data: {not json\n\n", b"data: [1, 2]\n\n", b'data: "text"\n\n'])
def test_malformed_frames_raise(frame: bytes) -> None:
    with pytest.raises(MalformedStream):
        SSEDecoder().feed(frame)
