"""Typed chunks: what the splitters produce and the indexing job stores as segments and child chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from openify.tokens import count_tokens


def content_hash(text: str) -> str:
    """Dify's `generate_text_hash`: sha256 of the text followed by "None" (stored as `index_node_hash`)."""
    return hashlib.sha256(f"{text}None".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChildChunk:
    content: str
    position: int  # 1-based within its parent
    tokens: int
    word_count: int  # characters, as Dify counts them
    hash: str

    @classmethod
    def of(cls, content: str, position: int) -> ChildChunk:
        return cls(content, position, count_tokens(content), len(content), content_hash(content))


@dataclass(frozen=True, slots=True)
class Chunk:
    """A segment. `answer` is set for qa_model, `children` for hierarchical_model (which embeds the children)."""

    content: str
    position: int  # 1-based within its document
    tokens: int
    word_count: int
    hash: str
    answer: str | None = None
    children: tuple[ChildChunk, ...] = ()

    @classmethod
    def of(cls, content: str, position: int, answer: str | None = None, children: tuple[ChildChunk, ...] = ()) -> Chunk:
        text = content if answer is None else content + answer
        return cls(content, position, count_tokens(text), len(text), content_hash(content), answer, children)

    @property
    def index_text(self) -> str:
        """The text the keyword index holds: question and answer for QA, else the content."""
        return self.content if not self.answer else f"{self.content}\n{self.answer}"
