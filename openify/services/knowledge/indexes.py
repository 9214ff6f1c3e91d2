"""Each dataset's keyword and vector indexes, kept in step with the database.

The database is the truth; the index files under the data dir are a cache of it. Every persist
writes a manifest of the index's node ids and the hash of each one's text last (and removes it
first), so a process killed at any point leaves either no manifest (the indexes are rebuilt from
the database) or a manifest that says exactly what the files hold. On opening, the indexes are
brought in step by difference: nodes the database has and the index lacks are added, nodes it no
longer has are dropped, and nodes whose text changed (the database committed an edit the index
never received: a crash between the two) are indexed again.

At most `max_open` datasets' indexes stay open; the least recently used are closed beyond that
(persisted first when they hold unpersisted changes).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from openify.errors import NotFound
from openify.knowledge.chunks import content_hash
from openify.knowledge.embedding_cache import SqliteEmbeddingCache
from openify.knowledge.layout import (
    dataset_dir,
    embedding_cache_path,
    index_chunks,
    open_indexes,
    persist,
    remove_chunks,
)
from openify.knowledge.retrieval import DatasetIndexes
from openify.providers.base import EmbeddingModel
from openify.registry import Registries
from openify.storage.db import Database
from openify.storage.tables import ChildChunk, Dataset, Document, Segment

log = logging.getLogger("openify.knowledge")
_MANIFEST = "manifest.json"
_ADD_BATCH = 256


class DatasetGone(NotFound):
    """The dataset was deleted; its indexes are not opened again."""


@dataclass(frozen=True, slots=True)
class Node:
    """One entry of a dataset's indexes: a text chunk, a QA pair or a hierarchical child."""

    node_id: str
    text: str


def searchable_nodes(s: Session, dataset_id: str, document_ids: Sequence[str] | None = None) -> list[Node]:
    """The nodes the indexes must hold: enabled chunks of enabled, unarchived, completed documents."""
    live = (
        select(Segment.id, Segment.index_node_id, Segment.content, Segment.answer, Document.doc_form)
        .join(Document, Document.id == Segment.document_id)
        .where(
            Segment.dataset_id == dataset_id,
            Segment.enabled.is_(True),
            Segment.status == "completed",
            Document.enabled.is_(True),
            Document.archived.is_(False),
            Document.indexing_status == "completed",
        )
    )
    if document_ids is not None:
        live = live.where(Segment.document_id.in_(list(document_ids)))
    rows = s.execute(live).all()
    nodes: list[Node] = []
    parents = [r.id for r in rows if r.doc_form == "hierarchical_model"]
    for r in rows:
        if r.doc_form != "hierarchical_model":
            nodes.append(Node(r.index_node_id, r.content if not r.answer else f"{r.content}\n{r.answer}"))
    for start in range(0, len(parents), 500):
        part = parents[start : start + 500]
        for c in s.execute(select(ChildChunk.index_node_id, ChildChunk.content).where(ChildChunk.segment_id.in_(part))):
            nodes.append(Node(c.index_node_id, c.content))
    return nodes


class IndexManager:
    """Opens each dataset's indexes once per process, serialises their changes, and persists them."""

    def __init__(
        self,
        db: Database,
        registries: Registries,
        data_dir: Path,
        vector_backend: str,
        embedding_for: Callable[[Dataset], EmbeddingModel | None],
        max_open: int = 64,
    ) -> None:
        self._db, self._r, self._data_dir, self._backend = db, registries, data_dir, vector_backend
        self._embedding_for = embedding_for
        self._max_open = max_open
        # dataset id -> (its indexes, node id -> hash of the text indexed under it); least recently used first
        self._open: OrderedDict[str, tuple[DatasetIndexes, dict[str, str | None]]] = OrderedDict()
        self._dirty: set[str] = set()  # open datasets with changes not yet persisted
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._cache: SqliteEmbeddingCache | None = None

    @property
    def cache(self) -> SqliteEmbeddingCache:
        with self._guard:
            if self._cache is None:
                self._cache = SqliteEmbeddingCache(embedding_cache_path(self._data_dir))
            return self._cache

    def lock(self, dataset_id: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(dataset_id, threading.RLock())

    def close(self) -> None:
        with self._guard:
            if self._cache is not None:
                self._cache.close()
                self._cache = None
            self._open.clear()
            self._dirty.clear()

    def open_count(self) -> int:
        """How many datasets' indexes are open."""
        return len(self._open)

    # --- opening and reconciling --------------------------------------------------------------
    def get(self, dataset: Dataset) -> DatasetIndexes:
        """The dataset's indexes, in step with the database."""
        with self.lock(dataset.id):
            found = self._open.get(dataset.id)
            if found is None:
                found = self._load(dataset)
                with self._guard:
                    self._open[dataset.id] = found
            with self._guard:
                self._open.move_to_end(dataset.id)
            self._evict(keep=dataset.id)
            return found[0]

    def _evict(self, keep: str) -> None:
        """Close the least recently used indexes beyond `max_open`; one in use by another thread stays open
        for now (waiting for its lock here could deadlock), and is closed by a later call."""
        with self._guard:
            excess = len(self._open) - self._max_open
            oldest = [d for d in self._open if d != keep][: max(excess, 0)]
        for dataset_id in oldest:
            lock = self.lock(dataset_id)
            if not lock.acquire(blocking=False):
                continue
            try:
                entry = self._open.get(dataset_id)
                if entry is None:
                    continue
                if dataset_id in self._dirty:
                    self._persist(dataset_id, *entry)
                with self._guard:
                    self._open.pop(dataset_id, None)
                    self._dirty.discard(dataset_id)
            finally:
                lock.release()

    def _fresh(self, dataset: Dataset) -> DatasetIndexes:
        return open_indexes(self._r, self._data_dir, dataset.id, self._embedding_for(dataset), self._backend)

    def _load(self, dataset: Dataset) -> tuple[DatasetIndexes, dict[str, str | None]]:
        base = dataset_dir(self._data_dir, dataset.id)
        with self._db.session() as s:
            if s.get(Dataset, dataset.id) is None:  # deleted: never recreate its files
                raise DatasetGone("Dataset not found.")
            expected = {n.node_id: n.text for n in searchable_nodes(s, dataset.id)}
        manifest = _read_manifest(base)
        indexes: DatasetIndexes | None = None
        if manifest is not None:
            try:
                indexes = self._fresh(dataset)
            except Exception:
                log.warning("indexes of dataset %s cannot be read; rebuilding", dataset.id, exc_info=True)
            if indexes is not None and not _counts_match(indexes, len(manifest)):
                indexes = None
        rebuilt = indexes is None
        if indexes is None:
            shutil.rmtree(base, ignore_errors=True)
            indexes = self._fresh(dataset)
        held: dict[str, str | None] = {} if rebuilt or manifest is None else manifest
        extra = held.keys() - expected.keys()
        missing = [nid for nid in expected if nid not in held]
        # The index holds an older text than the database (an edit committed, then a crash before the index
        # took it). A manifest from before hashes were kept has None: taken as in step.
        changed = [nid for nid, text in expected.items() if held.get(nid) not in (None, content_hash(text))]
        if extra or missing or changed or rebuilt:
            if extra:
                remove_chunks(indexes, extra)
                for nid in extra:
                    del held[nid]
            self._add(indexes, held, [Node(nid, expected[nid]) for nid in [*missing, *changed]])
            self._persist(dataset.id, indexes, held)
            log.info(
                "dataset %s indexes brought in step: %d added, %d removed, %d re-indexed",
                dataset.id,
                len(missing),
                len(extra),
                len(changed),
            )
        return indexes, held

    # --- changes --------------------------------------------------------------------------------
    def _add(self, indexes: DatasetIndexes, held: dict[str, str | None], nodes: Sequence[Node]) -> None:
        for start in range(0, len(nodes), _ADD_BATCH):
            part = nodes[start : start + _ADD_BATCH]
            index_chunks(indexes, [n.node_id for n in part], [n.text for n in part], self.cache)
            held.update((n.node_id, content_hash(n.text)) for n in part)

    def add(self, dataset: Dataset, nodes: Sequence[Node], persist_now: bool = True) -> None:
        """Index nodes (embedding them through the cache); they match at once."""
        with self.lock(dataset.id):
            indexes = self.get(dataset)
            self._add(indexes, self._open[dataset.id][1], nodes)
            self._dirty.add(dataset.id)
            if persist_now:
                self.persist(dataset.id)

    def remove(self, dataset: Dataset, node_ids: Iterable[str], persist_now: bool = True) -> None:
        """Drop nodes from every index of the dataset at once."""
        ids = list(node_ids)
        if not ids:
            return
        with self.lock(dataset.id):
            indexes = self.get(dataset)
            remove_chunks(indexes, ids)
            held = self._open[dataset.id][1]
            for nid in ids:
                held.pop(nid, None)
            self._dirty.add(dataset.id)
            if persist_now:
                self.persist(dataset.id)

    def persist(self, dataset_id: str) -> None:
        with self.lock(dataset_id):
            if dataset_id in self._open:
                indexes, held = self._open[dataset_id]
                self._persist(dataset_id, indexes, held)
                self._dirty.discard(dataset_id)

    def _persist(self, dataset_id: str, indexes: DatasetIndexes, held: dict[str, str | None]) -> None:
        base = dataset_dir(self._data_dir, dataset_id)
        base.mkdir(parents=True, exist_ok=True)
        (base / _MANIFEST).unlink(missing_ok=True)  # files and manifest disagree until the new one is written
        persist(indexes)
        tmp = base / f"{_MANIFEST}.tmp"
        tmp.write_text(json.dumps(dict(sorted(held.items()))), encoding="utf-8")
        tmp.replace(base / _MANIFEST)

    def drop(self, dataset_id: str) -> None:
        """Forget a deleted dataset and delete its index files."""
        with self.lock(dataset_id):
            self._forget(dataset_id)
            shutil.rmtree(dataset_dir(self._data_dir, dataset_id), ignore_errors=True)

    def reset(self, dataset_id: str) -> None:
        """Close a dataset's indexes so the next use rebuilds them (its embedding model changed)."""
        with self.lock(dataset_id):
            self._forget(dataset_id)
            shutil.rmtree(dataset_dir(self._data_dir, dataset_id), ignore_errors=True)

    def _forget(self, dataset_id: str) -> None:
        with self._guard:
            self._open.pop(dataset_id, None)
            self._dirty.discard(dataset_id)


def _read_manifest(base: Path) -> dict[str, str | None] | None:
    """Node id -> text hash; a manifest written before hashes were kept is a list of ids (hash None)."""
    try:
        found = json.loads((base / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(found, list):
        return dict.fromkeys(map(str, found))
    if isinstance(found, dict):
        return {str(k): v if isinstance(v, str) else None for k, v in found.items()}
    return None


def _counts_match(indexes: DatasetIndexes, n: int) -> bool:
    if indexes.keyword.count() != n:
        return False
    return indexes.vectors is None or indexes.vectors.count() == n
