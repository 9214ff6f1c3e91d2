"""The chat page in Debian's headless chromium (Playwright's Python API), against a live `openify serve`
and the stand-in model: a streamed answer, stop, feedback, a conversation switch, screenshots, no key leak."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from tests.api.chatkit import CHAT_DSL, providers_yaml
from tests.conftest import LiveServer, start_server, stop_server
from tests.fake_llm.server import FakeLLM

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `.ci/run` installs it (apt-get install chromium)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def site(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[tuple[LiveServer, str, str]]:
    data = tmp_path / "live"
    data.mkdir()
    (data / "providers.yaml").write_text(providers_yaml(fake_llm), encoding="utf-8")
    server = start_server(data, f"sqlite:///{tmp_path / 'web.db'}")
    try:
        out = server.cli("app", "import", str(CHAT_DSL))
        assert out.returncode == 0, out.stderr
        imported = json.loads(out.stdout)
        out = server.cli("app", "site", imported["app_id"], "--enable")
        assert out.returncode == 0, out.stderr
        enabled = json.loads(out.stdout)
        assert enabled["url"] == f"/chat/{enabled['code']}"
        yield server, enabled["url"], imported["api_key"]
    finally:
        stop_server(server)


def test_chat_page_streams_stops_rates_and_switches(
    browser: Any, site: tuple[LiveServer, str, str], fake_llm: FakeLLM, tmp_path: Path
) -> None:
    server, url, api_key = site
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    traffic: list[str] = []
    page.on("request", lambda r: traffic.append(f"{r.url} {r.headers} {r.post_data or ''}"))

    def on_response(r: Any) -> None:
        if "text/event-stream" not in r.headers.get("content-type", ""):
            try:
                traffic.append(r.text())
            except sync_api.Error:  # a body the browser did not keep
                traffic.append(f"(no body: {r.url})")

    page.on("response", on_response)
    page.goto(server.base_url + url)
    expect = sync_api.expect
    expect(page.locator("body[data-ready=true]")).to_have_count(1)

    # the opening statement's suggested question sends itself; then a streamed Markdown answer, sanitised
    fake_llm.reply("**Bold** answer <img src=x onerror=alert(1)> 中文", "First chat")
    page.get_by_role("button", name="帮我算一卦").click()
    expect(page.locator("article.msg.user")).to_have_text("帮我算一卦")
    answer = page.locator("article.msg.assistant").last
    expect(answer.locator("strong")).to_have_text("Bold")
    expect(answer).to_contain_text("中文")
    assert answer.locator("img[onerror]").count() == 0
    expect(page.locator("#conversation-list .conv")).to_have_count(1)

    # like, then the server has it
    answer.get_by_label("Like", exact=True).click()
    expect(answer.get_by_label("Like", exact=True)).to_have_attribute("aria-pressed", "true")

    # stop: a slow answer ends early, and the page is ready again
    fake_llm.token_latency_s = 0.2
    fake_llm.reply("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen")
    page.get_by_role("button", name="New chat").click()
    page.get_by_label("Your message").fill("Count slowly")
    page.keyboard.press("Enter")
    slow = page.locator("article.msg.assistant").last
    expect(slow).to_contain_text("one")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=5000)
    assert "fifteen" not in slow.inner_text()
    fake_llm.token_latency_s = 0.0
    expect(page.locator("#conversation-list .conv")).to_have_count(2)

    # switching back to the first conversation shows its history, with the like kept
    page.locator("#conversation-list .conv").last.click()
    first = page.locator("article.msg.assistant").first
    expect(first.locator("strong")).to_have_text("Bold")
    expect(first.get_by_label("Like", exact=True)).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(tmp_path / "chat-desktop.png"), full_page=True)

    # phone width, Chinese UI text
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    p2 = phone.new_page()
    p2.goto(server.base_url + url)
    expect(p2.locator("body[data-ready=true]")).to_have_count(1)
    expect(p2.get_by_role("button", name="发送")).to_be_visible()
    p2.screenshot(path=str(tmp_path / "chat-phone.png"), full_page=True)
    phone.close()

    # the app's API key is nowhere in the page: scripts, storage, traffic
    storage = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
    scripts = "".join(httpx.get(server.base_url + f"/web-static/{name}").text for name in ("chat.js", "web.js"))
    for seen in (page.content(), storage, scripts, "\n".join(traffic)):
        assert api_key not in seen
    assert "openify-passport" in storage  # the page did authenticate, with its passport
    context.close()
