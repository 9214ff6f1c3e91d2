"""`current_time`: the current date and time in a timezone (Dify's builtin time tool)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openify.settings import Settings


class CurrentTimeTool:
    name = "current_time"
    label = "Current Time"
    description = "Get the current date and time. Optional: timezone (IANA name such as Asia/Shanghai), format."
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "timezone": {"type": "string", "description": "IANA timezone name, default UTC"},
            "format": {"type": "string", "description": "strftime format, default %Y-%m-%d %H:%M:%S %Z"},
        },
        "required": [],
    }

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    async def invoke(self, arguments: Mapping[str, Any]) -> str:
        zone = str(arguments.get("timezone") or "UTC")
        try:
            tz = UTC if zone.upper() == "UTC" else ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return f"error: unknown timezone {zone!r}"
        fmt = str(arguments.get("format") or "%Y-%m-%d %H:%M:%S %Z")
        return datetime.now(tz).strftime(fmt)
