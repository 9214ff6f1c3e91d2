"""Timestamps on the wire: Unix seconds mostly, ISO-8601 where Dify uses it."""

from __future__ import annotations

from datetime import UTC, datetime


def unix(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    return int(dt.replace(tzinfo=UTC).timestamp())


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
