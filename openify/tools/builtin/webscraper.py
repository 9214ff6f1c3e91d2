"""Dify's builtin `webscraper`: a page's title and readable text, fetched through the SSRF guard."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from bs4 import BeautifulSoup

from openify.security.ssrf import GuardedHttpClient
from openify.settings import Settings
from openify.tools.base import TextMessage, ToolCall, ToolError, ToolMessage, ToolProviderDeclaration
from openify.tools.builtin.declarations import label, param, tool

# Dify's default user agent for the scraper.
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.1000.0 Safari/537.36"
)
_DROP = ("script", "style", "noscript", "template", "svg", "head")

DECLARATION = ToolProviderDeclaration(
    provider_type="builtin",
    id="webscraper",
    name="webscraper",
    label=label("WebScraper", "网页抓取"),
    description=label("Web Scrapper tool kit is used to scrape web", "一个用于抓取网页的工具。"),
    tools=(
        tool(
            "webscraper",
            "Web Scraper",
            "网页爬虫",
            "A tool for scraping webpages. Input should be a URL.",
            [
                param("url", "string", required=True, en="URL", zh="网页链接", llm="url for scraping"),
                param("user_agent", "string", form="form", en="User Agent", default=DEFAULT_USER_AGENT),
                param("generate_summary", "boolean", form="form", en="Whether to generate summary", default=False),
            ],
        ),
    ),
)


def page_text(html: str) -> str:
    """`TITLE:` and the visible text of a page, blank runs collapsed."""
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(_DROP):
        tag.decompose()
    text = soup.get_text("\n")
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = "\n".join(line.strip() for line in text.splitlines())
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return f"TITLE: {title}\nTEXT:\n\n{text}" if title else text


class WebScraperTools:
    declaration = DECLARATION

    def __init__(self, settings: Settings) -> None:
        self._http = GuardedHttpClient(settings.http_node)

    async def invoke(
        self, _tool_name: str, parameters: Mapping[str, Any], _call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        url = str(parameters.get("url") or "").strip()
        if not url:
            raise ToolError("Please input url")
        if not url.startswith(("http://", "https://")):
            raise ToolError(f"URL must start with http:// or https://: {url!r}")
        agent = str(parameters.get("user_agent") or DEFAULT_USER_AGENT)
        try:
            resp = await self._http.request("GET", url, headers={"User-Agent": agent}, timeout_s=30.0)
        except Exception as exc:  # refused targets, timeouts, oversize bodies: the tool's own failure
            raise ToolError(f"Failed to fetch {url}: {exc}") from exc
        if resp.status_code >= 400:
            raise ToolError(f"Failed to fetch {url}: status code {resp.status_code}")
        ctype = {k.lower(): v for k, v in resp.headers.items()}.get("content-type", "")
        # generate_summary needs a summarising model that Dify takes from the tenant; Openify returns the text.
        yield TextMessage(page_text(resp.text) if "html" in ctype or not ctype else resp.text)
