"""Markdown files: kept as Markdown, since headings and lists help the splitter and the LLM alike."""

from __future__ import annotations

from typing import ClassVar

import regex as re  # type: ignore[import-untyped]  # no stubs; releases the GIL while it scans (concurrent=True)

from openify.knowledge.extractors.base import Extracted, decode_text
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits

# Dify's MarkdownExtractor drops link targets but keeps link text; we do the same so URLs do not
# crowd the chunks (remove_urls_emails is off by default). Link text holds no brackets and the target at most one
# level of parentheses (Wikipedia URLs), so the scan from one `[` stops at the next bracket: linear on hostile
# text, where `[^\]]*` made `[` x 40k take 5 s.
_LINK = re.compile(r"(?<!!)\[([^\[\]]*)\]\((?:[^()\[\]]|\([^()\[\]]*\))*\)")


class MarkdownExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("md", "markdown", "mdx")

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:  # noqa: ARG002 - capped by the upload size and extract()
        return Extracted(_LINK.sub(r"\1", decode_text(data, filename), concurrent=True))


def register(r: Registries) -> None:
    for ext in MarkdownExtractor.extensions:
        r.extractors.register(ext, MarkdownExtractor())
