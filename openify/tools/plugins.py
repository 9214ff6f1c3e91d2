"""Built-in agent tools (a plugin module: `register(r)`); each item is a factory `(settings) -> Tool`."""

from __future__ import annotations

from openify.registry import Registries
from openify.tools.current_time import CurrentTimeTool
from openify.tools.http_request import HttpRequestTool


def register(r: Registries) -> None:
    r.tools.register(CurrentTimeTool.name, CurrentTimeTool)
    r.tools.register(HttpRequestTool.name, HttpRequestTool)
