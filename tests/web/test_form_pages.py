"""The completion and workflow pages in Debian's headless chromium against a live server and the stand-in
model: the form, a streamed result, feedback (completion), node progress and outputs (workflow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from tests.api.chatkit import COMPLETION_DSL, providers_yaml
from tests.conftest import DSL_DIR, LiveServer, start_server, stop_server
from tests.fake_llm.server import FakeLLM

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `.ci/run` installs it
WORKFLOW_DSL = DSL_DIR / "01-workflow-0.1.0-seo-slug-generator.yml"
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def server(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[LiveServer]:
    data = tmp_path / "live"
    data.mkdir()
    (data / "providers.yaml").write_text(providers_yaml(fake_llm), encoding="utf-8")
    live = start_server(data, f"sqlite:///{tmp_path / 'web.db'}")
    try:
        yield live
    finally:
        stop_server(live)


def _site(server: LiveServer, dsl: Path) -> tuple[str, str]:
    out = server.cli("app", "import", str(dsl))
    assert out.returncode == 0, out.stderr
    imported = json.loads(out.stdout)
    out = server.cli("app", "site", imported["app_id"], "--enable")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["url"], imported["api_key"]


def test_completion_page_streams_a_result_and_takes_feedback(
    browser: Any, server: LiveServer, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    url, api_key = _site(server, COMPLETION_DSL)
    assert url.startswith("/completion/")
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")
    page.goto(server.base_url + url)
    expect(page.locator("body[data-ready=true]")).to_have_count(1)
    page.get_by_label("Database Type").select_option("PostgreSQL")
    page.get_by_label("Input").fill("列出所有用户")
    fake_llm.reply("```sql\nSELECT * FROM users;\n```")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#result pre code")).to_contain_text("SELECT * FROM users;")
    assert "PostgreSQL" in json.dumps(fake_llm.received[-1])  # the form's inputs reached the prompt
    page.get_by_label("Dislike", exact=True).click()
    expect(page.get_by_label("Dislike", exact=True)).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(tmp_path / "completion-desktop.png"), full_page=True)
    assert api_key not in page.content()
    page.close()


def test_workflow_page_shows_node_progress_and_outputs(
    browser: Any, server: LiveServer, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    url, _ = _site(server, WORKFLOW_DSL)
    assert url.startswith("/workflow/")
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    page.goto(server.base_url + url)
    expect(page.locator("body[data-ready=true]")).to_have_count(1)
    page.get_by_label("title").fill("如何写好 Python")
    fake_llm.reply("how-to-write-python-well")
    page.get_by_role("button", name="运行").click()
    expect(page.locator("#result")).to_contain_text("how-to-write-python-well")
    expect(page.locator("#steps li")).to_have_count(3)
    expect(page.locator("#steps li").last).to_contain_text("✓")
    page.screenshot(path=str(tmp_path / "workflow-phone.png"), full_page=True)
    page.close()
