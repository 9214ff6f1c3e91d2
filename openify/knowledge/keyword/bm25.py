"""BM25 keyword index on bm25s, with jieba tokens for Chinese.

bm25s builds an immutable sparse matrix, so changes are made cheap this way:
- deletes take effect at once through a mask on the scores; the rows are dropped at the next rebuild;
- adds are tokenised at once (the costly part) and the matrix is rebuilt lazily, on the first query
  after a change, from the stored tokens, so a batch of adds costs one rebuild.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import bm25s  # type: ignore[import-untyped]  # bm25s is untyped
import numpy as np

from openify.knowledge.keyword.tokenizer import tokenize
from openify.registry import Registries

_DOCS = "docs.jsonl"
_MATRIX = "bm25s"


def _quiet_bm25s() -> None:
    logging.getLogger("bm25s").setLevel(logging.WARNING)


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
        self._stale = False  # rows were added (or too many deleted) since the matrix was built
        self.rebuilds = 0
        if directory is not None and (directory / _DOCS).exists():
            self._load(directory)

    # --- changes -------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        tokens = [tokenize(t) for t in texts]
        with self._lock:
            self.delete(ids)
            start = len(self._ids)
            self._ids.extend(ids)
            self._tokens.extend(tokens)
            self._row.update((cid, start + i) for i, cid in enumerate(ids))
            self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
            self._stale = True

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for cid in ids:
                row = self._row.pop(cid, None)
                if row is not None:
                    self._alive[row] = False
            dead = len(self._ids) - len(self._row)
            if dead > 1000 and dead > len(self._ids) // 4:
                self._stale = True  # compact: dead rows still weigh on document frequencies

    def count(self) -> int:
        return len(self._row)

    # --- queries -------------------------------------------------------------------------------
    def search(self, query: str, top_k: int, filter_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        q = tokenize(query)
        with self._lock:
            if self._stale:
                self._rebuild()
            model = self._model
            if model is None or not q or top_k <= 0:
                return []
            qids = model.get_tokens_ids(q)
            if not qids:
                return []
            scores = model.get_scores_from_ids(qids)
            mask = self._alive[: len(scores)]
            if filter_ids is not None:
                rows = np.fromiter((r for cid in filter_ids if (r := self._row.get(cid)) is not None), dtype=np.int64)
                allowed = np.zeros(len(scores), dtype=bool)
                allowed[rows] = True
                mask = mask & allowed
            scores = np.where(mask, scores, 0.0)
            k = min(top_k, int(np.count_nonzero(scores)))
            if k == 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self._ids[i], float(scores[i])) for i in top]

    def _rebuild(self) -> None:
        _quiet_bm25s()
        keep = np.flatnonzero(self._alive)
        if len(keep) < len(self._ids):
            self._ids = [self._ids[i] for i in keep]
            self._tokens = [self._tokens[i] for i in keep]
            self._row = {cid: i for i, cid in enumerate(self._ids)}
            self._alive = np.ones(len(self._ids), dtype=bool)
        self._model = None
        if self._ids:
            model = bm25s.BM25(k1=self.k1, b=self.b)
            model.index(self._tokens, show_progress=False)
            self._model = model
        self._stale = False
        self.rebuilds += 1

    # --- persistence ---------------------------------------------------------------------------
    def persist(self) -> None:
        if self.directory is None:
            raise ValueError("this index has no directory")
        with self._lock:
            if self._stale or len(self._row) < len(self._ids):
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
                self._tokens.append(toks.split(" ") if toks else [])
        self._alive = np.ones(len(self._ids), dtype=bool)
        self._stale = True
        matrix = directory / _MATRIX
        if self._ids and matrix.exists():
            _quiet_bm25s()
            model = bm25s.BM25.load(str(matrix), show_progress=False)
            if int(model.scores["num_docs"]) == len(self._ids):
                self._model, self._stale = model, False


def register(r: Registries) -> None:
    r.keyword_indexes.register(BM25KeywordIndex.name, BM25KeywordIndex)
