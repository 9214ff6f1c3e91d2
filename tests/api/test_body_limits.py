"""Request bodies are limited before anything parses or authenticates them, over real HTTP (raw sockets, so
the test controls exactly what is sent and when)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openify.api.body_limit import MAX_JSON_VALUES
from tests.conftest import DSL_DIR, LiveServer, start_server, stop_server

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    env = {"OPENIFY_REQUEST__MAX_BODY_MB": "1"}
    env |= {
        f"OPENIFY_UPLOAD__{kind}SIZE_LIMIT_MB": "1" for kind in ("FILE_", "IMAGE_FILE_", "AUDIO_FILE_", "VIDEO_FILE_")
    }
    live = start_server(tmp / "live", f"sqlite:///{tmp / 'openify.db'}", env)
    try:
        yield live
    finally:
        stop_server(live)


def _exchange(server: LiveServer, head: str, chunks: Iterator[bytes] | None = None) -> tuple[int, dict[str, object]]:
    """Send a request head and then `chunks` (stopping quietly if the server closes), read the answer."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks or iter(()):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the answer is already waiting
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
                got = sock.recv(65536)
                if not got:
                    break
                data += got
        except ConnectionResetError:
            pass
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    return status, json.loads(body[: _length(data)])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def _head(path: str, headers: dict[str, str]) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: testserver", "Authorization: Bearer app-wrong-key"]
    return "\r\n".join(lines + [f"{k}: {v}" for k, v in headers.items()]) + "\r\n\r\n"


def test_declared_oversize_json_is_refused_before_reading_or_auth(server: LiveServer) -> None:
    # 200 MB announced, none of it sent: the answer comes at once, and it is not the 401 a parsed body would get.
    started = time.monotonic()
    status, body = _exchange(
        server, _head("/v1/chat-messages", {"Content-Type": "application/json", "Content-Length": str(200 * MB)})
    )
    assert status == 413
    assert body == {
        "code": "request_entity_too_large",
        "message": "The data value transmitted exceeds the capacity limit.",
        "status": 413,
    }
    assert time.monotonic() - started < 5


def _chunked(total: int, piece: bytes) -> Iterator[bytes]:
    sent = 0
    yield b'b\r\n{"query": "\r\n'
    while sent < total:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        sent += len(piece)


def test_streamed_oversize_body_is_cut_off_at_the_limit(server: LiveServer) -> None:
    # No Content-Length: the body is counted as it arrives, and cut off long before its end.
    head = _head("/v1/chat-messages", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    status, body = _exchange(server, head, _chunked(3 * MB, b"x" * 65536))
    assert (status, body["code"]) == (413, "request_entity_too_large")
    # An upload streamed without a length, with a valid key (the upload route checks the key before it reads
    # the form): counted as the route reads it, and cut off past the multipart limit (1 + 1 MB here).
    r = server.cli("app", "import", str(DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml"))
    key = json.loads(r.stdout)["api_key"]
    head = _head(
        "/v1/files/upload", {"Content-Type": "multipart/form-data; boundary=xyz", "Transfer-Encoding": "chunked"}
    ).replace("app-wrong-key", key)
    part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n'
    chunks = [part, *([b"y" * 65536] * 64)]
    status, body = _exchange(server, head, (f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks))
    assert (status, body["code"]) == (413, "file_too_large")


def test_multipart_upload_over_the_upload_limits_is_file_too_large(server: LiveServer) -> None:
    # Uploads may reach the largest upload limit plus 1 MB of form fields: here 1 + 1 MB.
    status, body = _exchange(
        server,
        _head("/v1/files/upload", {"Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": str(3 * MB)}),
    )
    assert (status, body["code"]) == (413, "file_too_large")
    assert "2 MB" in str(body["message"])


def test_small_bodies_reach_authentication_and_json_with_too_many_values_is_refused(server: LiveServer) -> None:
    small = json.dumps({"query": "你好" * 1000, "inputs": {}, "user": "u"}).encode()
    status, body = _exchange(
        server,
        _head("/v1/chat-messages", {"Content-Type": "application/json", "Content-Length": str(len(small))}),
        iter([small]),
    )
    assert (status, body["code"]) == (401, "unauthorized")
    # Under 1 MB but 250,000 numbers: parsing that on the event loop would stall it, so it is vetted off it.
    many = json.dumps({"query": "q", "inputs": {"x": [1] * 250_000}, "user": "u"}, separators=(",", ":")).encode()
    assert len(many) < MB
    status, body = _exchange(
        server,
        _head("/v1/chat-messages", {"Content-Type": "application/json", "Content-Length": str(len(many))}),
        iter([many]),
    )
    assert status == 413
    assert body["message"] == f"The JSON body holds more than {MAX_JSON_VALUES:,} values."
    # Text with commas is not values: a long paragraph passes on to the key check.
    prose = json.dumps({"query": "a, b, c, " * 60_000, "inputs": {}, "user": "u"}).encode()
    status, body = _exchange(
        server,
        _head("/v1/chat-messages", {"Content-Type": "application/json", "Content-Length": str(len(prose))}),
        iter([prose]),
    )
    assert (status, body["code"]) == (401, "unauthorized")
