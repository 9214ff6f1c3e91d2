"""Built-in tools (a plugin module: `register(r)`): the `builtin` tool source (Dify's time, webscraper, code,
audio) and the agent-chat app's own small tools (factories `(settings) -> Tool`)."""

from __future__ import annotations

from openify.registry import Registries
from openify.tools import builtin, mcp
from openify.tools.current_time import CurrentTimeTool
from openify.tools.http_request import HttpRequestTool


def register(r: Registries) -> None:
    builtin.register(r)
    mcp.register(r)
    r.tools.register(CurrentTimeTool.name, CurrentTimeTool)
    r.tools.register(HttpRequestTool.name, HttpRequestTool)
