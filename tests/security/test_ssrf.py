"""The SSRF guard: internal addresses refused after resolution and on every redirect; allow-listed ones reached."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openify.security.ssrf import GuardedHttpClient, HttpRequestError, SSRFBlocked, is_blocked_address
from openify.settings import HttpNodeSettings


@dataclass
class Server:
    port: int
    seen: list[str] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    """A loopback HTTP server: /echo says its Host header, /redirect?to=URL redirects, /big and /slow misbehave."""
    state = Server(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(self.path)
            if self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", self.path.split("=", 1)[1])
                self.end_headers()
                return
            if self.path == "/big":
                self.send_response(200)
                self.end_headers()  # no Content-Length: the cap must hold while streaming
                try:
                    for _ in range(64):
                        self.wfile.write(b"x" * 1024)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading at its cap
                return
            if self.path == "/slow":
                time.sleep(2)
            body = f"host={self.headers['Host']}".encode()
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except BrokenPipeError:
                pass  # /slow: the client has given up, as the test wants

        def do_POST(self) -> None:
            state.seen.append(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = f"{self.headers['Content-Type']}|{self.headers.get('X-Key')}|".encode() + body
            self.send_response(201)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def guarded(*allow: str, **kw: object) -> GuardedHttpClient:
    return GuardedHttpClient(HttpNodeSettings(allow_hosts=list(allow), **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "ip"),
    [
        ("http://127.0.0.1:{port}/echo", "127.0.0.1"),
        ("http://localhost:{port}/echo", "127.0.0.1"),
        ("http://10.0.0.1/", "10.0.0.1"),
        ("http://172.16.5.4/", "172.16.5.4"),
        ("http://192.168.1.1/", "192.168.1.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://100.64.0.1/", "100.64.0.1"),
        ("http://0.0.0.0:{port}/", "0.0.0.0"),
        ("http://[::1]:{port}/", "::1"),
        ("http://[fe80::1]/", "fe80::1"),
        ("http://[fc00::1]/", "fc00::1"),
        ("http://2130706433:{port}/", "127.0.0.1"),
        ("http://0x7f000001:{port}/", "127.0.0.1"),
        ("http://127.1:{port}/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]:{port}/", "::ffff:7f00:1"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe"),
    ],
)
async def test_internal_addresses_are_refused(server: Server, url: str, ip: str) -> None:
    with pytest.raises(SSRFBlocked) as info:
        await guarded().request("GET", url.format(port=server.port))
    assert str(info.value) == f"Access to private or loopback address {ip} is not allowed"
    assert server.seen == []


async def test_octal_ip_is_refused_or_rejected(server: Server) -> None:
    with pytest.raises((SSRFBlocked, HttpRequestError)):
        await guarded().request("GET", f"http://0177.0.0.1:{server.port}/echo")
    assert server.seen == []


async def test_dns_name_resolving_to_loopback_is_refused(server: Server) -> None:
    async def rebinding_dns(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"] if host == "innocent.example" else []

    client = GuardedHttpClient(HttpNodeSettings(), resolver=rebinding_dns)
    with pytest.raises(SSRFBlocked, match=r"127\.0\.0\.1"):
        await client.request("GET", f"http://innocent.example:{server.port}/echo")
    assert server.seen == []


async def test_dns_answer_is_used_for_the_connection_with_the_original_host_header(server: Server) -> None:
    asked: list[str] = []

    async def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    client = GuardedHttpClient(HttpNodeSettings(allow_hosts=["api.internal.test"]), resolver=dns)
    r = await client.request("GET", f"http://api.internal.test:{server.port}/echo")
    assert r.text == f"host=api.internal.test:{server.port}"
    assert asked == ["api.internal.test"]  # resolved once, by us: nothing left to rebind


async def test_allow_listed_loopback_is_reached(server: Server) -> None:
    for allow in ("127.0.0.1", "127.0.0.0/8", "localhost"):
        r = await guarded(allow).request(
            "GET", server.url("/echo", host="localhost" if allow == "localhost" else "127.0.0.1")
        )
        assert r.status_code == 200 and r.text.startswith("host=")
    assert server.seen == ["/echo"] * 3


async def test_redirect_to_a_non_allowed_loopback_address_is_refused(server: Server) -> None:
    client = guarded("127.0.0.1")
    target = server.url("/echo", host="127.0.0.2")
    with pytest.raises(SSRFBlocked, match=r"127\.0\.0\.2"):
        await client.request("GET", server.url(f"/redirect?to={target}"))
    assert server.seen == [f"/redirect?to={target}"]
    with pytest.raises(SSRFBlocked, match=r"169\.254\.169\.254"):
        await client.request("GET", server.url("/redirect?to=http://169.254.169.254/latest"))


async def test_redirects_are_followed_hop_by_hop_and_capped(server: Server) -> None:
    client = guarded("127.0.0.1")
    r = await client.request("GET", server.url(f"/redirect?to={server.url('/echo')}"))
    assert r.status_code == 200 and r.url == server.url("/echo")
    r = await client.request("GET", server.url(f"/redirect?to={server.url('/echo')}"), follow_redirects=False)
    assert r.status_code == 302
    loop = server.url("/redirect?to=/redirect?to=/redirect?to=/echo")
    with pytest.raises(HttpRequestError, match="Too many redirects"):
        await client.request("GET", loop, max_redirects=1)


async def test_response_size_cap(server: Server) -> None:
    client = guarded("127.0.0.1", max_response_bytes=10_000)
    with pytest.raises(HttpRequestError, match="exceeds the limit of 10000 bytes"):
        await client.request("GET", server.url("/big"))
    r = await client.request("GET", server.url("/big"), max_response_bytes=100_000)
    assert len(r.body) == 64 * 1024


async def test_timeout(server: Server) -> None:
    client = guarded("127.0.0.1")
    started = time.monotonic()
    with pytest.raises(HttpRequestError, match="timed out"):
        await client.request("GET", server.url("/slow"), timeout_s=0.3)
    assert time.monotonic() - started < 1.5


async def test_request_carries_method_headers_params_and_body(server: Server) -> None:
    r = await guarded("127.0.0.1").request(
        "post", server.url("/p"), headers={"X-Key": "k"}, params={"q": "中文"}, json={"a": "你好"}
    )
    assert r.status_code == 201
    assert r.body.decode() == 'application/json|k|{"a":"你好"}'
    assert server.seen == ["/p?q=%E4%B8%AD%E6%96%87"]


async def test_connection_refused_is_a_request_error(server: Server) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: nothing answers
        with pytest.raises(HttpRequestError, match="failed"):
            await guarded("127.0.0.1").request("GET", f"http://127.0.0.1:{port}/")


async def test_non_http_schemes_are_refused() -> None:
    with pytest.raises(HttpRequestError):
        await guarded().request("GET", "file:///etc/passwd")


async def test_concurrent_requests_share_one_client(server: Server) -> None:
    client = guarded("127.0.0.1")
    rs = await asyncio.gather(*(client.request("GET", server.url("/echo")) for _ in range(5)))
    assert {r.status_code for r in rs} == {200}


@pytest.mark.parametrize(
    ("ip", "blocked"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("2002:7f00:1::", True),
        ("64:ff9b::a9fe:a9fe", True),
        ("::127.0.0.1", True),
    ],
)
def test_is_blocked_address(ip: str, blocked: bool) -> None:
    assert is_blocked_address(ip) is blocked
