"""Splitters, one per `doc_form`, registered in `r.splitters`.

`split_document(r.splitters, extracted, process_rule, doc_form)` is what the indexing job calls:
it validates Dify's process_rule dict, cleans the text and returns typed chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from openify.knowledge.chunks import Chunk
from openify.knowledge.extractors.base import Extracted
from openify.knowledge.process_rule import ProcessRule
from openify.registry import Registries, Registry


class Splitter(Protocol):
    """Turns extracted text into chunks for one doc_form."""

    def split(self, extracted: Extracted, rule: ProcessRule) -> list[Chunk]:
        """Clean and cut the text as `rule` says; raise ExtractionError when the text cannot give chunks."""
        ...


def split_document(
    splitters: Registry[Any],
    extracted: Extracted | str,
    process_rule: Mapping[str, Any] | ProcessRule | None = None,
    doc_form: str = "text_model",
) -> list[Chunk]:
    """Chunks of a document. `process_rule` is Dify's dict (validated here: InvalidParam) or a parsed rule."""
    rule = process_rule if isinstance(process_rule, ProcessRule) else ProcessRule.from_dify(process_rule, doc_form)
    if isinstance(extracted, str):
        extracted = Extracted(extracted)
    splitter: Splitter = splitters.get(doc_form)
    return splitter.split(extracted, rule)


def register(r: Registries) -> None:
    from openify.knowledge.splitters.paragraph import ParagraphSplitter
    from openify.knowledge.splitters.parent_child import ParentChildSplitter
    from openify.knowledge.splitters.qa import QASplitter

    for splitter in (ParagraphSplitter(), ParentChildSplitter(), QASplitter()):
        r.splitters.register(splitter.doc_form, splitter)
