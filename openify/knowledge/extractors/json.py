"""JSON and JSON Lines files: each leaf as `path: value`, one per line, so keys stay searchable."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError, decode_text
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits, DocumentTooLarge


class _Lines(list[str]):
    """The output lines, counting their characters: every leaf repeats its path, so deep nesting multiplies
    a small file (1 MB of `[[[...1]]]` paths) and the count stops it at the text cap."""

    def __init__(self, max_chars: int, filename: str) -> None:
        super().__init__()
        self.chars, self.max_chars, self.filename = 0, max_chars, filename

    def add(self, line: str) -> None:
        self.chars += len(line) + 1
        if self.chars > self.max_chars:
            raise DocumentTooLarge(
                f"{self.filename}: the extracted text is over the limit of {self.max_chars:,} characters"
            )
        self.append(line)


def _leaves(value: Any, path: str, out: _Lines) -> None:
    if isinstance(value, dict):
        if not value and path:
            out.add(f"{path}: {{}}")
        for k, v in value.items():
            _leaves(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        # A list of objects reads best as one block per item, separated by a blank line.
        for i, v in enumerate(value):
            before = len(out)
            _leaves(v, f"{path}[{i}]" if path else f"[{i}]", out)
            if isinstance(v, dict | list) and len(out) > before:
                out.add("")
    else:
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        out.add(f"{path}: {text}" if path else text)


class JsonExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("json", "jsonl", "ndjson")

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:
        text = decode_text(data, filename)
        try:
            if filename.lower().endswith((".jsonl", ".ndjson")):
                value: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExtractionError(f"{filename}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
        except RecursionError as e:
            raise ExtractionError(f"{filename}: the JSON is nested too deeply") from e
        out = _Lines(limits.max_text_chars, filename)
        try:
            _leaves(value, "", out)
        except RecursionError as e:
            raise ExtractionError(f"{filename}: the JSON is nested too deeply") from e
        return Extracted("\n".join(out).strip())


def register(r: Registries) -> None:
    for ext in JsonExtractor.extensions:
        r.extractors.register(ext, JsonExtractor())
