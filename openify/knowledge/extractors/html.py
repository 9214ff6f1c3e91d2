"""HTML files, through BeautifulSoup: visible text, one block element per line."""

from __future__ import annotations

from typing import ClassVar

import regex as re  # type: ignore[import-untyped]  # no stubs; releases the GIL while it scans (concurrent=True)
from bs4 import BeautifulSoup

from openify.knowledge.extractors.base import Extracted, decode_text
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits

_BLANKS = re.compile(r"\n\s*\n+")


class HtmlExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("html", "htm", "xhtml")

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:  # noqa: ARG002 - capped by the upload size and extract()
        # lxml, not html.parser: html.parser rescans to the end from every unclosed `<a href='` (quadratic: 1 MB
        # of them ran for minutes); lxml's parser is linear.
        soup = BeautifulSoup(decode_text(data, filename), "lxml")
        for tag in soup(["script", "style", "noscript", "template", "head"]):
            tag.decompose()
        text = soup.get_text("\n")
        lines = (line.strip() for line in text.splitlines())
        return Extracted(_BLANKS.sub("\n\n", "\n".join(lines), concurrent=True).strip())


def register(r: Registries) -> None:
    for ext in HtmlExtractor.extensions:
        r.extractors.register(ext, HtmlExtractor())
