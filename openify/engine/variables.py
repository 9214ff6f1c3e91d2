"""The run's variable pool: values addressed by selectors `[node_id, name, *path]`, and `{{#a.b#}}` templates."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Dify's reference pattern: node id, then 1-10 segments.
TEMPLATE_RE = re.compile(r"\{\{#([a-zA-Z0-9_]{1,50}(?:\.[a-zA-Z_][a-zA-Z0-9_]{0,29}){1,10})#\}\}")
FILE_MARK = "__dify__file__"
# Dify's file attribute names differ from the File object's keys in one place.
_FILE_ATTR = {"name": "filename"}


def is_file(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("dify_model_identity") == FILE_MARK


def contains_file(value: Any, depth: int = 0) -> bool:
    """Whether a JSON value holds a File value anywhere (a client may not send one: only the server mints them)."""
    if is_file(value):
        return True
    if depth > 32:  # deeper than any File a client could mean; the request's JSON parser bounds it anyway
        return False
    if isinstance(value, Mapping):
        return any(contains_file(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_file(v, depth + 1) for v in value)
    return False


class VariablePool:
    """Values per node id. A child pool (iteration item, loop round) reads through to its parent and
    keeps locally only the outputs of the nodes it owns; other writes (conversation and loop
    variables) land in the parent, so they are visible after the container."""

    __slots__ = ("_local", "_owned", "_parent")

    def __init__(self, parent: VariablePool | None = None, owned: Iterable[str] = ()) -> None:
        self._local: dict[str, dict[str, Any]] = {}
        self._parent = parent
        self._owned = frozenset(owned)

    def child(self, owned: Iterable[str]) -> VariablePool:
        return VariablePool(self, owned)

    def add(self, node_id: str, name: str, value: Any) -> None:
        if self._parent is not None and node_id not in self._owned:
            self._parent.add(node_id, name, value)
            return
        bucket = self._local.get(node_id)
        if bucket is None:
            bucket = self._local[node_id] = {}
        bucket[name] = value

    def set_local(self, node_id: str, name: str, value: Any) -> None:
        """Write into this layer only (an iteration's `item`/`index`)."""
        self._local.setdefault(node_id, {})[name] = value

    def add_outputs(self, node_id: str, outputs: Mapping[str, Any]) -> None:
        for k, v in outputs.items():
            self.add(node_id, k, v)

    def _lookup(self, node_id: str, name: str) -> tuple[bool, Any]:
        pool: VariablePool | None = self
        while pool is not None:
            bucket = pool._local.get(node_id)
            if bucket is not None and name in bucket:
                return True, bucket[name]
            pool = pool._parent
        return False, None

    def has(self, selector: Sequence[str]) -> bool:
        if len(selector) < 2:
            return False
        found, value = self._lookup(selector[0], selector[1])
        if not found:
            return False
        return len(selector) == 2 or _walk(value, selector[2:])[0]

    def get(self, selector: Sequence[str]) -> Any:
        """The value at `selector`, or None when absent."""
        if len(selector) < 2:
            return None
        found, value = self._lookup(selector[0], selector[1])
        if not found or len(selector) == 2:
            return value
        return _walk(value, selector[2:])[1]

    def node_values(self, node_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        chain = []
        pool: VariablePool | None = self
        while pool is not None:
            chain.append(pool)
            pool = pool._parent
        for p in reversed(chain):
            out.update(p._local.get(node_id, {}))
        return out

    def render(self, template: str, markdown: bool = False, literals: Mapping[str, str] | None = None) -> str:
        """Replace every `{{#node.var#}}` with the value's text; an unresolved reference becomes `node.var`.
        `literals` fill specials such as `{{#context#}}` in the same pass, so text they insert (a retrieved
        chunk) is never read as a template: a chunk holding `{{#env.KEY#}}` stays that text."""
        if "{{#" not in template:
            return template
        if not literals:
            return TEMPLATE_RE.sub(lambda m: self._ref_text(m.group(1), markdown), template)
        specials = "|".join(re.escape(k) for k in literals)
        pattern = re.compile(rf"\{{\{{#({specials})#\}}\}}|{TEMPLATE_RE.pattern}")

        def sub(m: re.Match[str]) -> str:
            return literals[m.group(1)] if m.group(1) is not None else self._ref_text(m.group(2), markdown)

        return pattern.sub(sub, template)

    def _ref_text(self, ref: str, markdown: bool) -> str:
        selector = ref.split(".")
        if not self.has(selector):
            return ref  # Dify renders unresolved references as their bare text
        return to_text(self.get(selector), markdown)


def _walk(value: Any, path: Sequence[str]) -> tuple[bool, Any]:
    for key in path:
        if is_file(value):
            key = _FILE_ATTR.get(key, key)
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            return False, None
    return True, value


def template_selectors(template: str) -> list[list[str]]:
    return [m.group(1).split(".") for m in TEMPLATE_RE.finditer(template)]


def template_segments(template: str) -> list[str | list[str]]:
    """Split a template into literal text and selectors, in order."""
    out: list[str | list[str]] = []
    pos = 0
    for m in TEMPLATE_RE.finditer(template):
        if m.start() > pos:
            out.append(template[pos : m.start()])
        out.append(m.group(1).split("."))
        pos = m.end()
    if pos < len(template):
        out.append(template[pos:])
    return out


def to_text(value: Any, markdown: bool = False) -> str:
    """A value as Dify writes it into text (§6.4): Python spelling for booleans, JSON for objects."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    if is_file(value):
        return _file_markdown(value) if markdown else ""
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, indent=2 if markdown else None)
    if isinstance(value, list | tuple):
        if not value:
            return ""
        if markdown:
            return "\n".join(f"- {to_text(v, markdown=True)}" for v in value)
        if all(isinstance(v, str) for v in value):
            return json.dumps(list(value), ensure_ascii=False)
        if any(is_file(v) for v in value):
            return ""
        return str([_plain(v) for v in value])
    return str(value)


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _file_markdown(f: Mapping[str, Any]) -> str:
    url = f.get("url") or f.get("remote_url") or ""
    name = f.get("filename") or ""
    return f"![{name}]({url})" if f.get("type") == "image" else f"[{name}]({url})"


def files_in(value: Any) -> list[Mapping[str, Any]]:
    if is_file(value):
        return [value]
    if isinstance(value, list):
        return [v for v in value if is_file(v)]
    return []
