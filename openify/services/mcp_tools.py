"""MCP tool providers as the console API and the CLI manage them: add, list, refresh, remove (the `mcp` tool source
keeps them); header values never leave the server (listed masked)."""

from __future__ import annotations

from typing import Any

from openify.errors import InvalidParam
from openify.services.tools import ToolManager
from openify.storage.tables import McpToolProvider
from openify.tools.mcp import McpToolSource


def provider_body(row: McpToolProvider) -> dict[str, Any]:
    return {
        "id": row.id,
        "server_identifier": row.identifier,
        "name": row.name,
        "server_url": row.url,
        "command": row.command,
        "headers": dict.fromkeys(row.headers or {}, "******"),
        "timeout": row.timeout_s,
        "tools": [{"name": t.get("name"), "description": t.get("description", "")} for t in row.tools or []],
        "updated_at": int(row.updated_at.timestamp()) if row.updated_at else None,
    }


class McpToolProviders:
    def __init__(self, tools: ToolManager) -> None:
        self._tools = tools

    @property
    def source(self) -> McpToolSource:
        source = self._tools.source("mcp")
        if not isinstance(source, McpToolSource):
            raise InvalidParam("The mcp tool source is not registered")
        return source

    async def add(
        self, identifier: str, url: str, name: str | None, headers: dict[str, str], timeout_s: float, command: str = ""
    ) -> dict[str, Any]:
        if not 0 < timeout_s <= 600:
            raise InvalidParam("timeout must be between 0 and 600 seconds", params="timeout")
        return provider_body(await self.source.add(identifier, url, name, headers, timeout_s, command))

    def list(self) -> list[dict[str, Any]]:
        return [provider_body(r) for r in self.source.rows()]

    async def refresh(self, identifier: str) -> dict[str, Any]:
        return provider_body(await self.source.refresh(identifier))

    def remove(self, identifier: str) -> None:
        self.source.remove(identifier)
