"""The builtin tool source: Dify's time tools, the webscraper behind the SSRF guard, code in the sandbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from openify.settings import HttpNodeSettings, Settings
from openify.tools.base import TextMessage, ToolCall, ToolError, ToolRef, ToolSourceContext
from openify.tools.builtin import BuiltinToolSource
from tests.tools.kit import DirectoryHost

PAGE = "<html><head><title>天气</title><script>var x=1;</script></head><body><h1>北京</h1><p>晴，25°C</p></body></html>"


def source(**settings: Any) -> BuiltinToolSource:
    return BuiltinToolSource(ToolSourceContext(Settings(_env_file=None, **settings), DirectoryHost()))  # type: ignore[call-arg]


async def text(src: BuiltinToolSource, provider: str, tool: str, params: Mapping[str, Any]) -> str:
    out = [m async for m in src.invoke(ToolRef("builtin", provider, tool), params, ToolCall("u1"))]
    assert all(isinstance(m, TextMessage) for m in out)
    return "".join(m.text for m in out if isinstance(m, TextMessage))


async def test_the_five_time_tools() -> None:
    src = source()
    now = await text(src, "time", "current_time", {"timezone": "UTC", "format": "%Y-%m-%d"})
    assert now == datetime.now(UTC).strftime("%Y-%m-%d")
    assert await text(src, "time", "current_time", {"timezone": "Nowhere/City"}) == "Invalid timezone: Nowhere/City"
    assert await text(src, "time", "timestamp_to_localtime", {"timestamp": 0, "timezone": "Asia/Shanghai"}) == (
        "1970-01-01 08:00:00"
    )
    assert await text(src, "time", "localtime_to_timestamp", {"localtime": "1970-01-01 08:00:00"}) == "0"
    assert (
        await text(
            src,
            "time",
            "timezone_conversion",
            {
                "current_time": "2024-06-01 12:00:00",
                "current_timezone": "Europe/London",
                "target_timezone": "Asia/Tokyo",
            },
        )
        == "2024-06-01 20:00:00"
    )
    assert await text(src, "time", "weekday", {"year": 2026, "month": 12, "day": 7}) == "December 7, 2026 is Monday."
    assert await text(src, "time", "weekday", {"year": 2026, "month": 2, "day": 30}) == (
        "Invalid date: Year 2026, Month 2, Day 30."
    )
    with pytest.raises(ToolError, match="Invalid timezone"):
        await text(src, "time", "localtime_to_timestamp", {"localtime": "2024-01-01 00:00:00", "timezone": "X/Y"})


@pytest.fixture
def site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


async def test_webscraper_reads_a_page_only_where_the_ssrf_guard_allows(site: str) -> None:
    with pytest.raises(ToolError, match="not allowed"):
        await text(source(), "webscraper", "webscraper", {"url": site})
    allowed = source(http_node=HttpNodeSettings(allow_hosts=["127.0.0.1"]))
    page = await text(allowed, "webscraper", "webscraper", {"url": site})
    assert page.startswith("TITLE: 天气\n") and "北京" in page and "晴，25°C" in page and "var x" not in page


async def test_code_runs_in_the_sandbox_and_answers_its_output() -> None:
    src = source()
    assert await text(src, "code", "simple_code", {"language": "python3", "code": "print(sum(range(10)), '好')"}) == (
        "45 好\n"
    )
    assert await text(src, "code", "simple_code", {"language": "javascript", "code": "console.log(6*7)"}) == "42\n"
    with pytest.raises(ToolError):
        await text(src, "code", "simple_code", {"language": "python3", "code": "raise ValueError('坏')"})
    with pytest.raises(ToolError, match="python3 and javascript"):
        await text(src, "code", "simple_code", {"language": "ruby", "code": "puts 1"})
