"""Plain text files."""

from __future__ import annotations

from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, decode_text
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits


class TextExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("txt", "text", "log")

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:  # noqa: ARG002 - capped by the upload size and extract()
        return Extracted(decode_text(data, filename))


def register(r: Registries) -> None:
    for ext in TextExtractor.extensions:
        r.extractors.register(ext, TextExtractor())
