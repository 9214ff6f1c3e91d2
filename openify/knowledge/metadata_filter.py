"""Metadata filtering as Dify's `metadata_filtering_conditions`: conditions on document metadata,
joined by `and`/`or`, resolved to the chunk ids that may be returned (applied before ranking).

Operators: strings `contains, not contains, start with, end with, is, is not, empty, not empty, in,
not in`; numbers `=, ≠, >, <, ≥, ≤` (ASCII `!=, >=, <=` also accepted); times `before, after`
(Unix seconds or ISO 8601). A value that is missing or of the wrong type does not match, except
for `empty`, `not contains`, `is not` and `not in`, which a missing value satisfies.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from openify.errors import InvalidParam

STRING_OPERATORS = (
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "empty",
    "not empty",
    "in",
    "not in",
)
NUMBER_OPERATORS = ("=", "≠", ">", "<", "≥", "≤")
TIME_OPERATORS = ("before", "after")
_ALIASES = {"!=": "≠", ">=": "≥", "<=": "≤", "==": "="}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "≠": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "≥": operator.ge,
    "≤": operator.le,
}


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _time(v: Any) -> float | None:
    n = _number(v)
    if n is not None:
        return n
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
    return None


def _listed(v: Any) -> list[str]:
    if isinstance(v, list | tuple | set):
        return [str(x) for x in v]
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return [] if v is None else [str(v)]


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    comparison_operator: str
    value: Any = None

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        op, want, have = self.comparison_operator, self.value, metadata.get(self.name)
        empty = have is None or have == "" or have == []
        if op == "empty":
            return empty
        if op == "not empty":
            return not empty
        if op in ("not contains", "is not", "not in") and empty:
            return True
        if empty:
            return False
        if op in _COMPARE:
            a, b = _number(have), _number(want)
            return a is not None and b is not None and _COMPARE[op](a, b)
        if op in TIME_OPERATORS:
            a, b = _time(have), _time(want)
            return a is not None and b is not None and (a < b if op == "before" else a > b)
        text = str(have)
        match op:
            case "contains":
                return str(want) in text
            case "not contains":
                return str(want) not in text
            case "start with":
                return text.startswith(str(want))
            case "end with":
                return text.endswith(str(want))
            case "is":
                return text == str(want)
            case "is not":
                return text != str(want)
            case "in":
                return text in _listed(want)
            case "not in":
                return text not in _listed(want)
        return False


@dataclass(frozen=True, slots=True)
class MetadataFilter:
    conditions: tuple[Condition, ...]
    logical_operator: Literal["and", "or"] = "and"

    @classmethod
    def from_dify(cls, value: Mapping[str, Any] | None) -> MetadataFilter | None:
        """Parse `metadata_filtering_conditions`; None (or no conditions) means no filter. InvalidParam on bad input."""
        if not value:
            return None
        if not isinstance(value, Mapping):
            raise InvalidParam("metadata_filtering_conditions must be an object")
        logical = value.get("logical_operator", "and") or "and"
        if logical not in ("and", "or"):
            raise InvalidParam("metadata_filtering_conditions.logical_operator must be and or or")
        items = value.get("conditions") or []
        if not isinstance(items, list):
            raise InvalidParam("metadata_filtering_conditions.conditions must be a list")
        conditions = []
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
                raise InvalidParam("each metadata condition needs a name")
            op = _ALIASES.get(item.get("comparison_operator", ""), item.get("comparison_operator"))
            if op not in (*STRING_OPERATORS, *NUMBER_OPERATORS, *TIME_OPERATORS):
                raise InvalidParam(f"unknown comparison_operator {item.get('comparison_operator')!r}")
            conditions.append(Condition(item["name"], op, item.get("value")))
        return cls(tuple(conditions), cast(Literal["and", "or"], logical)) if conditions else None

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        results = (c.matches(metadata) for c in self.conditions)
        return all(results) if self.logical_operator == "and" else any(results)


def allowed_ids(records: Iterable[tuple[str, Mapping[str, Any]]], flt: MetadataFilter | None) -> set[str] | None:
    """The ids whose metadata passes `flt` (None when there is no filter: everything is allowed).

    `records` are (chunk id, its document's metadata, built-in fields included)."""
    if flt is None:
        return None
    return {cid for cid, meta in records if flt.matches(meta)}
