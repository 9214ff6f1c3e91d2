"""JSON and JSON Lines files: each leaf as `path: value`, one per line, so keys stay searchable."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError, decode_text
from openify.registry import Registries


def _leaves(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value and path:
            out.append(f"{path}: {{}}")
        for k, v in value.items():
            _leaves(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        # A list of objects reads best as one block per item, separated by a blank line.
        for i, v in enumerate(value):
            before = len(out)
            _leaves(v, f"{path}[{i}]" if path else f"[{i}]", out)
            if isinstance(v, dict | list) and len(out) > before:
                out.append("")
    else:
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        out.append(f"{path}: {text}" if path else text)


class JsonExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("json", "jsonl", "ndjson")

    def extract(self, data: bytes, filename: str) -> Extracted:
        text = decode_text(data, filename)
        try:
            if filename.lower().endswith((".jsonl", ".ndjson")):
                value: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExtractionError(f"{filename}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
        out: list[str] = []
        _leaves(value, "", out)
        return Extracted("\n".join(out).strip())


def register(r: Registries) -> None:
    for ext in JsonExtractor.extensions:
        r.extractors.register(ext, JsonExtractor())
