"""Secret environment variables (`value_type: secret`) masked in everything a run reports: node inputs,
process_data, outputs, errors, streamed text, run outputs. Nodes still read the real values from the pool;
only events (and so the SSE stream, blocking answers and stored rows, which are all built from events)
carry the mask.

Dify masks a secret segment where a template references it (`SecretSegment.log`, `obfuscated_token`); this
masks every occurrence of the value instead, so a secret a code node copied into its output is covered too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import msgspec

from openify.engine.events import TextChunk, WorkflowEvent, WorkflowFinished

# Values shorter than this are too common in ordinary text to replace everywhere (a secret "1" would rewrite
# every number of every output); no real credential is that short.
MIN_SECRET_CHARS = 4
# Fields that are run state, not a report: a chatflow stores its conversation variables from here.
_STATE_FIELDS = frozenset({"conversation_variables"})


def obfuscated(token: str) -> str:
    """Dify's encrypter.obfuscated_token: the first six and last two characters of a long value, else stars."""
    if len(token) <= 8:
        return "*" * 20
    return token[:6] + "*" * 12 + token[-2:]


class SecretMask:
    """Replaces the values of a graph's secret environment variables in events."""

    __slots__ = ("_longest", "_pending", "_pending_chunk", "_replacements")

    def __init__(self, environment_variables: Iterable[Mapping[str, Any]]) -> None:
        values = {
            str(v.get("value"))
            for v in environment_variables
            if v.get("value_type") == "secret" and len(str(v.get("value") or "")) >= MIN_SECRET_CHARS
        }
        found: dict[str, str] = {}
        for value in values:
            mask = obfuscated(value)
            # the value as it appears in a URL the HTTP node built, too
            for form in (value, quote(value, safe=""), quote_plus(value), quote(value)):
                found.setdefault(form, mask)
        # longest first: a secret that contains another is replaced whole
        self._replacements = sorted(found.items(), key=lambda kv: -len(kv[0]))
        self._longest = max((len(k) for k in found), default=0)
        self._pending = ""
        self._pending_chunk: TextChunk | None = None

    def __bool__(self) -> bool:
        return bool(self._replacements)

    def text(self, text: str) -> str:
        for value, mask in self._replacements:
            if value in text:
                text = text.replace(value, mask)
        return text

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def events(self, ev: WorkflowEvent) -> list[WorkflowEvent]:
        """The masked event(s) to report for `ev`. Streamed text is held back while its end could be the
        start of a secret split across chunks, and released (masked) with the next event."""
        if type(ev) is TextChunk:
            held = self._pending_chunk
            if held is not None and (held.node_id, held.from_variable_selector) != (
                ev.node_id,
                ev.from_variable_selector,
            ):
                out = self._flush()
                return [*out, *self._chunk(ev)]
            return self._chunk(ev)
        out = self._flush()
        changes = {
            f: self.value(getattr(ev, f))
            for f in ev.__struct_fields__
            if f not in _STATE_FIELDS or type(ev) is not WorkflowFinished
        }
        out.append(msgspec.structs.replace(ev, **changes))
        return out

    def _chunk(self, ev: TextChunk) -> list[WorkflowEvent]:
        text = self._pending + ev.text
        keep = self._open_prefix(text)
        shown, self._pending = text[: len(text) - keep], text[len(text) - keep :]
        self._pending_chunk = ev if keep else None
        if not shown:
            return []
        return [msgspec.structs.replace(ev, text=self.text(shown))]

    def _flush(self) -> list[WorkflowEvent]:
        held, text = self._pending_chunk, self._pending
        self._pending, self._pending_chunk = "", None
        if held is None or not text:
            return []
        return [msgspec.structs.replace(held, text=self.text(text))]

    def _open_prefix(self, text: str) -> int:
        """The length of the longest end of `text` that begins some secret without completing it."""
        for start in range(max(0, len(text) - self._longest + 1), len(text)):
            tail = text[start:]
            if any(value.startswith(tail) and value != tail for value, _ in self._replacements):
                return len(text) - start
        return 0
