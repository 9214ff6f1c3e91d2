"""Dify's builtin `time` provider: current_time, timestamp_to_localtime, localtime_to_timestamp,
timezone_conversion and weekday, with Dify's parameters, defaults and texts."""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from openify.tools.base import TextMessage, ToolCall, ToolError, ToolMessage, ToolProviderDeclaration
from openify.tools.builtin.declarations import label, param, tool

_FORMAT = "%Y-%m-%d %H:%M:%S"
_ZONES = (
    "UTC America/New_York America/Los_Angeles America/Chicago America/Sao_Paulo Asia/Shanghai Asia/Ho_Chi_Minh "
    "Asia/Tokyo Asia/Dubai Asia/Kolkata Asia/Seoul Asia/Singapore Europe/London Europe/Berlin Europe/Moscow "
    "Australia/Sydney Pacific/Auckland Africa/Cairo"
).split()

DECLARATION = ToolProviderDeclaration(
    provider_type="builtin",
    id="time",
    name="time",
    label=label("CurrentTime", "时间"),
    description=label("A tool for getting the current time.", "一个用于获取当前时间的工具。"),
    tools=(
        tool(
            "current_time",
            "Current Time",
            "获取当前时间",
            "A tool for getting the current time.",
            [
                param("format", "string", form="form", en="Format", zh="格式", default="%Y-%m-%d %H:%M:%S"),
                param("timezone", "select", form="form", en="Timezone", zh="时区", default="UTC", options=_ZONES),
            ],
        ),
        tool(
            "timestamp_to_localtime",
            "Timestamp to localtime",
            "时间戳转换",
            "A tool for timestamp convert to localtime",
            [
                param("timestamp", "number", required=True, en="Timestamp", zh="时间戳"),
                param("timezone", "string", en="Timezone", zh="时区", default="Asia/Shanghai"),
            ],
        ),
        tool(
            "localtime_to_timestamp",
            "localtime to timestamp",
            "获取时间戳",
            "A tool for localtime convert to timestamp",
            [
                param("localtime", "string", required=True, en="localtime", zh="本地时间"),
                param("timezone", "string", en="Timezone", zh="时区", default="Asia/Shanghai"),
            ],
        ),
        tool(
            "timezone_conversion",
            "convert time to equivalent time zone",
            "时区转换",
            "A tool to convert time to equivalent time zone",
            [
                param("current_time", "string", required=True, en="current time", zh="当前时间"),
                param("current_timezone", "string", required=True, en="Current Timezone", default="Asia/Shanghai"),
                param("target_timezone", "string", required=True, en="Target Timezone", default="Asia/Tokyo"),
            ],
        ),
        tool(
            "weekday",
            "Weekday Calculator",
            "星期几计算器",
            "A tool for calculating the weekday of a given date by year, month and day.",
            [
                param("year", "number", required=True, en="Year", zh="年"),
                param("month", "number", required=True, en="Month", zh="月"),
                param("day", "number", required=True, en="day", zh="日"),
            ],
        ),
    ),
)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ToolError(f"Invalid timezone: {name!r}") from None


def _local_zone(value: Any) -> tzinfo:
    """Dify: an empty timezone means the server's local one."""
    if not value:
        zone = datetime.now().astimezone().tzinfo
        return zone if zone is not None else UTC
    return _zone(str(value))


def _parse(text: str) -> datetime:
    try:
        return datetime.strptime(text, _FORMAT)
    except ValueError as exc:
        raise ToolError(str(exc)) from None


def _text(tool_name: str, p: Mapping[str, Any]) -> str:
    match tool_name:
        case "current_time":
            fmt = str(p.get("format") or "%Y-%m-%d %H:%M:%S %Z")
            zone = str(p.get("timezone") or "UTC")
            if zone == "UTC":
                return datetime.now(UTC).strftime(fmt)
            try:
                tz = ZoneInfo(zone)
            except (ValueError, KeyError, OSError):
                return f"Invalid timezone: {zone}"  # Dify answers this one as text, not as a failure
            return datetime.now(tz).strftime(fmt)
        case "timestamp_to_localtime":
            try:
                stamp = float(p.get("timestamp") or 0)
                return datetime.fromtimestamp(stamp, _local_zone(p.get("timezone", "Asia/Shanghai"))).strftime(_FORMAT)
            except (OverflowError, OSError, ValueError) as exc:
                raise ToolError(str(exc)) from None
        case "localtime_to_timestamp":
            local = _parse(str(p.get("localtime") or ""))
            return str(int(local.replace(tzinfo=_local_zone(p.get("timezone", "Asia/Shanghai"))).timestamp()))
        case "timezone_conversion":
            source = _zone(str(p.get("current_timezone") or "Asia/Shanghai"))
            target = _zone(str(p.get("target_timezone") or "Asia/Tokyo"))
            local = _parse(str(p.get("current_time") or ""))
            return local.replace(tzinfo=source).astimezone(target).strftime(_FORMAT)
        case "weekday":
            try:
                year, month, day = int(p.get("year") or 0), int(p.get("month") or 0), int(p.get("day") or 0)
                date = datetime(year, month, day)
            except (TypeError, ValueError):
                return f"Invalid date: Year {p.get('year')}, Month {p.get('month')}, Day {p.get('day')}."
            return f"{calendar.month_name[month]} {date.day}, {date.year} is {calendar.day_name[date.weekday()]}."
    raise ToolError(f"The time provider has no tool {tool_name!r}")


class TimeTools:
    declaration = DECLARATION

    async def invoke(
        self, tool_name: str, parameters: Mapping[str, Any], _call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        yield TextMessage(_text(tool_name, parameters))
