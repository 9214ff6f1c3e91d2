"""Dify's comparison operators, shared by if-else, loop break conditions and the list operator."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from openify.engine.node import NodeError, selector
from openify.engine.variables import VariablePool, is_file

_FILE_ATTR = {"name": "filename"}


def _num(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    s = str(value).strip()
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            raise NodeError(f"Cannot compare with {value!r}: not a number.", "InvalidConditionValue") from None


def compare(actual: Any, op: str, expected: Any) -> bool:
    """Evaluate one operator the way Dify's condition processor does."""
    if op in ("empty", "not empty"):
        empty = not actual
        return empty if op == "empty" else not empty
    if op in ("null", "not null"):
        return (actual is None) == (op == "null")
    if op in ("exists", "not exists"):
        return (actual is not None) == (op == "exists")
    if op == "contains":
        return bool(actual) and _contains(actual, expected)
    if op == "not contains":
        return not actual or not _contains(actual, expected)
    if op == "start with":
        return bool(actual) and isinstance(actual, str) and actual.startswith(str(expected))
    if op == "end with":
        return bool(actual) and isinstance(actual, str) and actual.endswith(str(expected))
    if op in ("is", "is not"):
        if actual is None:
            return False
        if isinstance(actual, bool):
            exp = expected
            if isinstance(expected, str):
                try:
                    exp = json.loads(expected.lower())
                except ValueError:
                    exp = expected
            same = actual == exp
        elif isinstance(actual, str):
            same = actual == ("" if expected is None else str(expected))
        elif isinstance(actual, int | float):
            same = actual == _num(expected)
        else:
            raise NodeError(f"Operator {op!r} needs a string or boolean value.", "InvalidConditionType")
        return same if op == "is" else not same
    if op in ("in", "not in"):
        options = _as_list(expected)
        inside = actual in options if not isinstance(actual, list) else any(a in options for a in actual)
        return inside if op == "in" else not inside
    if op == "all of":
        options = _as_list(expected)
        if not isinstance(actual, list | tuple):
            return False
        return all(o in actual for o in options)
    if op in ("=", "≠", ">", "<", "≥", "≤", "!=", ">=", "<="):
        if actual is None:
            return False
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            actual = _num(actual)
        exp = _num(expected) if not isinstance(expected, int | float) else expected
        if op in ("=", "≠", "!="):
            exp = type(actual)(exp) if isinstance(actual, int) and float(exp).is_integer() else exp
        match op:
            case "=":
                return bool(actual == exp)
            case "≠" | "!=":
                return bool(actual != exp)
            case ">":
                return bool(actual > exp)
            case "<":
                return bool(actual < exp)
            case "≥" | ">=":
                return bool(actual >= exp)
            case _:
                return bool(actual <= exp)
    raise NodeError(f"Unsupported comparison operator: {op!r}.", "InvalidConditionOperator")


def _as_list(expected: Any) -> list[Any]:
    if isinstance(expected, list | tuple):
        return list(expected)
    if isinstance(expected, str):
        try:
            parsed = json.loads(expected)
            if isinstance(parsed, list):
                return parsed
        except ValueError:
            pass
        return [expected]
    return [expected]


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return str(expected) in actual
    if isinstance(actual, list | tuple):
        if expected in actual:
            return True
        # numbers compared with their string form as typed in the editor
        return any(str(a) == str(expected) for a in actual if not isinstance(a, Mapping))
    if isinstance(actual, Mapping):
        return expected in actual
    return False


def file_attr(file: Mapping[str, Any], key: str) -> Any:
    value = file.get(_FILE_ATTR.get(key, key))
    if key == "extension" and isinstance(value, str) and value and not value.startswith("."):
        value = "." + value
    return value


def _sub_expected(key: str, value: Any) -> Any:
    if key == "extension" and isinstance(value, str) and value and not value.startswith("."):
        return "." + value
    return value


def _files_match(files: Sequence[Any], op: str, sub: Mapping[str, Any], pool: VariablePool) -> bool:
    conds = [c for c in sub.get("conditions") or [] if isinstance(c, Mapping)]
    logical = sub.get("logical_operator", "and")

    def one(c: Mapping[str, Any]) -> bool:
        key, cop = str(c.get("key", "")), str(c.get("comparison_operator", ""))
        expected = _sub_expected(key, _render(c.get("value"), pool))
        negative = cop.startswith("not ") or cop in ("is not", "≠")
        hits = [compare(file_attr(f, key), cop, expected) for f in files if is_file(f) or isinstance(f, Mapping)]
        return all(hits) if negative else any(hits)

    def each_file(f: Mapping[str, Any]) -> bool:
        results = [
            compare(
                file_attr(f, str(c.get("key", ""))),
                str(c.get("comparison_operator", "")),
                _sub_expected(str(c.get("key", "")), _render(c.get("value"), pool)),
            )
            for c in conds
        ]
        return all(results) if logical == "and" else any(results)

    if op == "all of":
        return bool(files) and all(each_file(f) for f in files)
    if not conds:
        return bool(files) if op == "contains" else not files
    results = [one(c) for c in conds]
    hit = all(results) if logical == "and" else any(results)
    return hit if op == "contains" else not hit


def _render(value: Any, pool: VariablePool) -> Any:
    if isinstance(value, str):
        return pool.render(value)
    if isinstance(value, list):
        return [_render(v, pool) for v in value]
    return value


def check_condition(cond: Mapping[str, Any], pool: VariablePool, strict: bool = True) -> bool:
    sel = selector(cond.get("variable_selector"))
    op = str(cond.get("comparison_operator", ""))
    if strict and not pool.has(sel) and op not in ("exists", "not exists", "null", "not null", "empty", "not empty"):
        raise NodeError(f"Variable {'.'.join(sel)} not found.", "VariableNotFound")
    actual = pool.get(sel)
    sub = cond.get("sub_variable_condition")
    if isinstance(sub, Mapping) and op in ("contains", "not contains", "all of") and isinstance(actual, list):
        return _files_match(actual, op, sub, pool)
    return compare(actual, op, _render(cond.get("value"), pool))


def check_conditions(conds: Sequence[Mapping[str, Any]], logical: str, pool: VariablePool, strict: bool = True) -> bool:
    if logical == "or":
        return any(check_condition(c, pool, strict) for c in conds)
    return all(check_condition(c, pool, strict) for c in conds)
