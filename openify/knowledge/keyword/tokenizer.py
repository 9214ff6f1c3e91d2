"""Tokens for keyword search in mixed Chinese and Latin text.

CJK runs go through jieba's search mode (words and their sub-words, so 北京大学 also matches 北京);
Latin runs become lower-case words, stemmed with Snowball English; stopwords of both are dropped.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import regex as re  # type: ignore[import-untyped]  # no stubs; releases the GIL while it scans (concurrent=True)
import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no type information
from bm25s.stopwords import STOPWORDS_EN  # type: ignore[import-untyped]  # bm25s is untyped

_RUNS = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)|([A-Za-z0-9\u00c0-\u024f]+(?:['’][A-Za-z]+)?)")
_jieba_lock = threading.Lock()
_JIEBA_SLICE = 4096

# Function words and particles that carry no topic; a short list, in the spirit of Dify's jieba stopwords.
STOPWORDS_ZH = frozenset(
    "的 了 和 是 在 我 有 就 不 人 都 一 一个 上 也 很 到 说 要 去 你 会 着 没有 看 好 自己 这 那 与 及 或 而 并 等 "
    "之 其 中 为 以 于 对 把 被 从 向 由 将 给 让 比 这个 那个 这些 那些 什么 哪 哪些 哪个 怎么 怎样 如何 为什么 "
    "吗 呢 吧 啊 呀 嘛 么 哦 哈 则 即 但 但是 而且 因为 所以 如果 虽然 可以 能 能够 可能 应该 已经 还 又 再 "
    "个 些 种 位 我们 你们 他们 她们 它们 他 她 它 其中 之一 还是 是否 多少 几 所 得 地 过 来 呀 哪里 谁".split()
)
STOPWORDS = frozenset(STOPWORDS_EN) | STOPWORDS_ZH


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _jieba() -> object:
    import jieba  # type: ignore[import-untyped]  # jieba is untyped

    jieba.setLogLevel(logging.WARNING)
    with _jieba_lock:
        jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search tokens of `text`: jieba words for CJK, stemmed lower-case words for the rest."""
    jieba = _jieba()
    stem = _stemmer().stemWord
    out: list[str] = []
    for cjk, word in _RUNS.findall(text, concurrent=True):
        if cjk:
            # A run of CJK goes to jieba in slices: one block of 1 MB made jieba slower than linear and held the GIL
            # long; a word cut at a slice's end costs one sub-word in a 4,096-character run.
            for at in range(0, len(cjk), _JIEBA_SLICE):
                piece = cjk[at : at + _JIEBA_SLICE]
                out.extend(w for w in jieba.lcut_for_search(piece) if w not in STOPWORDS)  # type: ignore[attr-defined]  # jieba is untyped
        else:
            w = word.lower().replace("’", "'")
            if w not in STOPWORDS:
                out.append(stem(w))
    return out
