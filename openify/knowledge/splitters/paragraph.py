"""text_model: flat chunks. `automatic` merges pieces up to 500 tokens with 50 of overlap (Dify's
automatic rules); `custom` cuts on the user's separator and splits only what is too long."""

from __future__ import annotations

from typing import ClassVar

from openify.knowledge.chunks import Chunk
from openify.knowledge.cleaner import clean
from openify.knowledge.extractors.base import Extracted
from openify.knowledge.process_rule import ProcessRule
from openify.knowledge.splitters.recursive import RecursiveSplitter, split_on_separator


def _tidy(piece: str) -> str:
    # Dify drops a leading sentence mark left over from the cut.
    return piece[1:].strip() if piece.startswith((".", "。")) else piece


def split_text(text: str, rule: ProcessRule) -> list[str]:
    """Cleaned text cut into chunk texts by `rule` (automatic or custom segmentation)."""
    text = clean(text, rule)
    seg = rule.segmentation
    if rule.mode == "automatic":
        pieces = RecursiveSplitter(seg.max_tokens, seg.chunk_overlap).split(text)
    else:
        pieces = split_on_separator(text, seg.separator, seg.max_tokens, seg.chunk_overlap)
    return [p for p in (_tidy(p) for p in pieces) if p]


class ParagraphSplitter:
    doc_form: ClassVar[str] = "text_model"

    def split(self, extracted: Extracted, rule: ProcessRule) -> list[Chunk]:
        return [Chunk.of(text, i) for i, text in enumerate(split_text(extracted.text, rule), 1)]
