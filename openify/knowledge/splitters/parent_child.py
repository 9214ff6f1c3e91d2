"""hierarchical_model: parents (paragraphs, or the whole document) holding small children.

Children are what gets embedded and matched; the parent is what the LLM reads (Dify's parent-child
retrieval). Both levels use custom segmentation: cut on the separator, split what is too long.
"""

from __future__ import annotations

from typing import ClassVar

from openify.knowledge.chunks import ChildChunk, Chunk
from openify.knowledge.cleaner import clean
from openify.knowledge.extractors.base import Extracted
from openify.knowledge.process_rule import ProcessRule, Segmentation
from openify.knowledge.splitters.recursive import split_on_separator
from openify.tokens import count_tokens

# Dify truncates a full-doc parent: "text beyond 10,000 tokens will be truncated".
FULL_DOC_MAX_TOKENS = 10_000


def _tidy(piece: str) -> str:
    return piece[1:].strip() if piece.startswith((".", "。")) else piece


def _children(parent: str, seg: Segmentation) -> tuple[ChildChunk, ...]:
    texts = [
        t for t in (_tidy(p) for p in split_on_separator(parent, seg.separator, seg.max_tokens, seg.chunk_overlap)) if t
    ]
    return tuple(ChildChunk.of(t, i) for i, t in enumerate(texts, 1))


def _truncate(text: str, max_tokens: int) -> str:
    if count_tokens(text) <= max_tokens:
        return text
    from openify.tokens import decode, encode

    return decode(encode(text)[:max_tokens])


class ParentChildSplitter:
    doc_form: ClassVar[str] = "hierarchical_model"

    def split(self, extracted: Extracted, rule: ProcessRule) -> list[Chunk]:
        text = clean(extracted.text, rule)
        sub = rule.subchunk_segmentation or Segmentation("\n", 200, 0)
        if rule.parent_mode == "full-doc":
            parent = _truncate(text.strip(), FULL_DOC_MAX_TOKENS)
            return [Chunk.of(parent, 1, children=_children(parent, sub))] if parent else []
        seg = rule.segmentation
        parents = [
            t
            for t in (_tidy(p) for p in split_on_separator(text, seg.separator, seg.max_tokens, seg.chunk_overlap))
            if t
        ]
        return [Chunk.of(p, i, children=_children(p, sub)) for i, p in enumerate(parents, 1)]
