"""Plain text files."""

from __future__ import annotations

from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, decode_text
from openify.registry import Registries


class TextExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("txt", "text", "log")

    def extract(self, data: bytes, filename: str) -> Extracted:
        return Extracted(decode_text(data, filename))


def register(r: Registries) -> None:
    for ext in TextExtractor.extensions:
        r.extractors.register(ext, TextExtractor())
