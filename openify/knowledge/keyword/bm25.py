"""BM25 keyword index on bm25s, with jieba tokens for Chinese.

bm25s builds an immutable sparse matrix; this index keeps changes cheap:
- deletes take effect at once through a mask on the scores; rows are dropped at the next rebuild;
- adds are tokenised at once (the costly part) into a small delta segment, scored in Python with the
  main matrix's statistics (N, document frequencies, average length: Lucene's BM25, as bm25s), so
  a new chunk matches on the very next query and ranks as if it were in the matrix;
- the matrix is rebuilt from the stored tokens only when the delta outgrows a tenth of it (or a
  quarter of its rows are deleted), so rebuilds cost O(1) amortised per added chunk.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import bm25s  # type: ignore[import-untyped]  # bm25s is untyped
import numpy as np
import numpy.typing as npt

from openify.knowledge.keyword.tokenizer import tokenize
from openify.registry import Registries

_DOCS = "docs.jsonl"
_MATRIX = "bm25s"
MIN_DELTA = 2_000  # a delta this small never forces a rebuild
DELTA_SHARE = 0.10  # rebuild when the delta passes this share of the matrix
DEAD_SHARE = 0.25  # rebuild when this share of the matrix is deleted
POST_FILTER_MIN = 2_000  # allowed sets larger than this filter the best hits instead of masking rows


@lru_cache(maxsize=1024)
def _query_tokens(query: str) -> tuple[str, ...]:
    # Hybrid search asks twice per query, and apps repeat queries; jieba is the costly part.
    return tuple(tokenize(query))


class BM25KeywordIndex:
    name: ClassVar[str] = "bm25"

    def __init__(self, directory: Path | None = None, k1: float = 1.5, b: float = 0.75) -> None:
        """An index kept in `directory` (loaded if present) or, with None, in memory only."""
        self.directory, self.k1, self.b = directory, k1, b
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._tokens: list[list[str]] = []
        self._row: dict[str, int] = {}
        self._alive = np.zeros(0, dtype=bool)
        self._model: bm25s.BM25 | None = None
        self._main_rows = 0  # rows [0, main_rows) are in the matrix; the rest are the delta
        self._df: dict[str, int] = {}  # document frequencies of the matrix
        self._avgdl = 1.0
        self._postings: dict[str, list[tuple[int, int]]] = {}  # delta: token -> [(row, tf)]
        self._delta_tokens = 0
        self.rebuilds = 0
        if directory is not None and (directory / _DOCS).exists():
            self._load(directory)

    # --- changes -------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        # Interned: 100k chunks hold ~10M tokens, most of them repeats of a small vocabulary.
        tokens = [[sys.intern(w) for w in tokenize(t)] for t in texts]
        with self._lock:
            self.delete(ids)
            start = len(self._ids)
            self._ids.extend(ids)
            self._tokens.extend(tokens)
            self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
            for i, (cid, toks) in enumerate(zip(ids, tokens, strict=True)):
                row = start + i
                self._row[cid] = row
                self._delta_tokens += len(toks)
                for tok, tf in Counter(toks).items():
                    self._postings.setdefault(tok, []).append((row, tf))

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for cid in ids:
                row = self._row.pop(cid, None)
                if row is not None:
                    self._alive[row] = False

    def count(self) -> int:
        return len(self._row)

    def _needs_rebuild(self) -> bool:
        delta = len(self._ids) - self._main_rows
        if delta > max(MIN_DELTA, DELTA_SHARE * self._main_rows):
            return True
        dead = self._main_rows - int(np.count_nonzero(self._alive[: self._main_rows]))
        return dead > 1000 and dead > DEAD_SHARE * self._main_rows

    # --- queries -------------------------------------------------------------------------------
    def search(self, query: str, top_k: int, filter_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        q = list(_query_tokens(query))
        with self._lock:
            if self._needs_rebuild():
                self._rebuild()
            if not q or top_k <= 0 or not self._row:
                return []
            scores = np.zeros(len(self._ids), dtype=np.float32)
            if self._model is not None:
                qids = self._model.get_tokens_ids(q)
                if qids:
                    scores[: self._main_rows] = self._model.get_scores_from_ids(qids)
            self._score_delta(q, scores)
            scores = np.where(self._alive, scores, np.float32(0.0))
            if filter_ids is not None and len(filter_ids) > POST_FILTER_MIN:
                hits = self._post_filtered(scores, top_k, filter_ids)
                if hits is not None:
                    return hits
            mask = self._alive
            if filter_ids is not None:
                rows = np.fromiter((r for cid in filter_ids if (r := self._row.get(cid)) is not None), dtype=np.int64)
                allowed = np.zeros(len(scores), dtype=bool)
                allowed[rows] = True
                mask = mask & allowed
            scores = np.where(mask, scores, np.float32(0.0))
            k = min(top_k, int(np.count_nonzero(scores)))
            if k == 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self._ids[i], float(scores[i])) for i in top]

    def _post_filtered(
        self, scores: npt.NDArray[np.float32], top_k: int, filter_ids: Collection[str]
    ) -> list[tuple[str, float]] | None:
        """Best hits among `filter_ids` read off the best hits overall, for a large allowed set: cheaper
        than mapping every allowed id to its row. None when too few of them are allowed."""
        allowed = filter_ids if isinstance(filter_ids, set | frozenset | dict) else set(filter_ids)
        matching = int(np.count_nonzero(scores))
        want = min(matching, int(top_k * len(self._row) / len(allowed) * 2) + 10)
        if want == 0:
            return []
        top = np.argpartition(-scores, want - 1)[:want]
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = [(self._ids[i], float(scores[i])) for i in top if self._ids[i] in allowed][:top_k]
        return hits if len(hits) == top_k or want == matching else None

    def _score_delta(self, query: list[str], scores: npt.NDArray[np.float32]) -> None:
        # Statistics of matrix and delta together: exact when the matrix is empty, and within a tenth
        # of the matrix's own (which it keeps until the next rebuild) otherwise.
        delta_rows = len(self._ids) - self._main_rows
        if not delta_rows:
            return
        n = self._main_rows + delta_rows
        avgdl = (self._avgdl * self._main_rows + self._delta_tokens) / n or 1.0
        for tok in set(query):
            postings = self._postings.get(tok)
            if not postings:
                continue
            df = self._df.get(tok, 0) + len(postings)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))  # bm25s's "lucene" idf
            weight = idf * query.count(tok)  # bm25s sums a repeated query token once per occurrence
            for row, tf in postings:
                norm = self.k1 * (1 - self.b + self.b * len(self._tokens[row]) / avgdl)
                scores[row] += weight * tf / (tf + norm)

    def _rebuild(self) -> None:
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        keep = np.flatnonzero(self._alive)
        if len(keep) < len(self._ids):
            self._ids = [self._ids[i] for i in keep]
            self._tokens = [self._tokens[i] for i in keep]
            self._row = {cid: i for i, cid in enumerate(self._ids)}
            self._alive = np.ones(len(self._ids), dtype=bool)
        self._model = None
        if any(self._tokens):  # bm25s cannot index documents without a single token (punctuation-only chunks)
            model = bm25s.BM25(k1=self.k1, b=self.b)
            model.index(self._tokens, show_progress=False)
            self._model = model
        self._set_main_stats()
        self.rebuilds += 1

    def _set_main_stats(self) -> None:
        self._main_rows = len(self._ids)
        self._postings, self._delta_tokens = {}, 0
        df: Counter[str] = Counter()
        for toks in self._tokens:
            df.update(set(toks))
        self._df = dict(df)
        self._avgdl = max(1.0, sum(len(t) for t in self._tokens) / max(1, len(self._tokens)))

    # --- persistence ---------------------------------------------------------------------------
    def persist(self) -> None:
        """Write tokens and matrix (rebuilt first when there is a delta or deleted rows)."""
        if self.directory is None:
            raise ValueError("this index has no directory")
        with self._lock:
            if self._main_rows < len(self._ids) or len(self._row) < len(self._ids):
                self._rebuild()
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f"{_DOCS}.tmp"
            with tmp.open("w", encoding="utf-8") as f:
                for cid, toks in zip(self._ids, self._tokens, strict=True):
                    f.write(json.dumps([cid, " ".join(toks)], ensure_ascii=False) + "\n")
            if self._model is not None:
                self._model.save(str(self.directory / _MATRIX), show_progress=False)
            tmp.replace(self.directory / _DOCS)  # the docs file last: it marks a complete save

    def _load(self, directory: Path) -> None:
        with (directory / _DOCS).open(encoding="utf-8") as f:
            for line in f:
                cid, toks = json.loads(line)
                self._row[cid] = len(self._ids)
                self._ids.append(cid)
                self._tokens.append([sys.intern(w) for w in toks.split(" ")] if toks else [])
        self._alive = np.ones(len(self._ids), dtype=bool)
        matrix = directory / _MATRIX
        if self._ids and matrix.exists():
            logging.getLogger("bm25s").setLevel(logging.WARNING)
            model = bm25s.BM25.load(str(matrix), show_progress=False)
            if int(model.scores["num_docs"]) == len(self._ids):
                self._model = model
                self._set_main_stats()
                return
        self._rebuild()


def register(r: Registries) -> None:
    r.keyword_indexes.register(BM25KeywordIndex.name, BM25KeywordIndex)
