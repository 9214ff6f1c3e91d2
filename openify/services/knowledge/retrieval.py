"""Retrieval for the API (`POST /datasets/{id}/retrieve`), for apps (`dataset_configs`) and for
workflows (the knowledge-retrieval node): search the indexes, then hydrate hits from the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select, update

from openify.errors import DatasetNotInitialized, InvalidParam, NotFound
from openify.knowledge.metadata_filter import MetadataFilter
from openify.knowledge.retrieval import (
    RetrievalSettings,
    ScoredChunk,
    Weights,
    group_by_parent,
    merge_datasets,
    retrieve,
    router_tools,
)
from openify.providers.base import EmbeddingModel, RerankModel, ToolSpec
from openify.services.knowledge.indexes import IndexManager
from openify.services.knowledge.metadata import metadata_by_name
from openify.storage.db import Database
from openify.storage.tables import ChildChunk, Dataset, DatasetMetadataField, Document, Segment

MAX_QUERY_CHARS = 250  # Dify's hit-testing limit
ChooseDataset = Callable[[list[ToolSpec], str], str | None]  # (one tool per dataset, query) -> dataset id


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk with its document, dataset and (hierarchical) matched children."""

    segment: Segment
    document: Document
    dataset: Dataset
    score: float
    doc_metadata: Mapping[str, Any] = field(default_factory=dict)
    children: Sequence[tuple[ChildChunk, float]] = ()


def _available(s: Any, dataset_id: str) -> int:
    from sqlalchemy import func

    return int(
        s.scalar(
            select(func.count()).where(
                Document.dataset_id == dataset_id,
                Document.indexing_status == "completed",
                Document.enabled.is_(True),
                Document.archived.is_(False),
            )
        )
        or 0
    )


class RetrievalService:
    def __init__(
        self,
        db: Database,
        indexes: IndexManager,
        rerank_model: Callable[[str, str], RerankModel],
        router_embedding: Callable[[], EmbeddingModel],
    ) -> None:
        self._db, self._indexes, self._rerank_model = db, indexes, rerank_model
        self._router_embedding = router_embedding

    # --- one dataset ----------------------------------------------------------------------------
    def settings_for(self, dataset: Dataset, retrieval_model: Mapping[str, Any] | None) -> RetrievalSettings:
        chosen = retrieval_model if retrieval_model else (dataset.retrieval_model or {})
        return RetrievalSettings.from_dify(chosen, dataset.indexing_technique or "economy")

    def search(self, dataset: Dataset, query: str, settings: RetrievalSettings, count_hits: bool = True) -> list[Hit]:
        """The dataset's best chunks for `query`, hydrated (only searchable ones), best first."""
        indexes = self._indexes.get(dataset)
        filter_ids = self._filter_ids(dataset, settings.metadata_filter)
        reranker = self._rerank_model(*settings.reranking_model) if settings.reranking_model else None
        scored = retrieve(indexes, query, settings, filter_ids, reranker, self._contents)
        hits = self._hydrate(dataset, scored, settings.top_k)
        if count_hits and hits:
            with self._db.session() as s:
                s.execute(
                    update(Segment)
                    .where(Segment.id.in_([h.segment.id for h in hits]))
                    .values(hit_count=Segment.hit_count + 1)
                )
        return hits

    def retrieve(self, dataset_id: str, query: Any, retrieval_model: Mapping[str, Any] | None) -> list[Hit]:
        """`POST /datasets/{id}/retrieve`."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidParam("query is required", params="query")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidParam(f"Query cannot exceed {MAX_QUERY_CHARS} characters.", params="query")
        if retrieval_model is not None and not isinstance(retrieval_model, Mapping):
            raise InvalidParam("retrieval_model must be an object", params="retrieval_model")
        with self._db.session() as s:
            dataset = s.get(Dataset, dataset_id)
            if dataset is None:
                raise NotFound("Dataset not found.")
            if dataset.indexing_technique is None or (
                _available(s, dataset_id) == 0
                and s.scalar(
                    select(Document.id)
                    .where(
                        Document.dataset_id == dataset_id,
                        Document.indexing_status.in_(("waiting", "parsing", "cleaning", "splitting", "indexing")),
                    )
                    .limit(1)
                )
            ):
                raise DatasetNotInitialized()
            s.expunge(dataset)
        return self.search(dataset, query, self.settings_for(dataset, retrieval_model))

    # --- apps and workflows ---------------------------------------------------------------------
    def datasets(self, ids: Sequence[str]) -> list[Dataset]:
        """The datasets among `ids` that exist and have an available document, in the given order."""
        with self._db.session() as s:
            rows = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_(list(ids))))}
            out = [rows[i] for i in dict.fromkeys(ids) if i in rows and _available(s, i) > 0]
            for d in out:
                s.expunge(d)
            return out

    def multiple(
        self,
        datasets: Sequence[Dataset],
        query: str,
        top_k: int,
        score_threshold: float | None,
        rerank: tuple[str, str] | None,
        weights: Weights | None,
        metadata_filter: MetadataFilter | None,
    ) -> list[Hit]:
        """Dify's `multiple` retrieval: each dataset with its own method and the caller's top_k, merged."""
        per: dict[str, list[ScoredChunk]] = {}
        found: dict[tuple[str, str], Hit] = {}
        for d in datasets:
            base = self.settings_for(d, None)
            settings = RetrievalSettings(
                base.search_method, top_k, None, None, weights or base.weights, metadata_filter
            )
            hits = self.search(d, query, settings, count_hits=False)
            per[d.id] = [ScoredChunk(h.segment.id, h.score) for h in hits]
            found.update(((d.id, h.segment.id), h) for h in hits)
        reranker = self._rerank_model(*rerank) if rerank else None
        merged = merge_datasets(per, query, top_k, score_threshold, reranker, self._segment_contents)
        out = []
        for m in merged:
            h = found.get((m.dataset_id or "", m.chunk_id))
            if h is not None:
                out.append(Hit(h.segment, h.document, h.dataset, m.score, h.doc_metadata, h.children))
        self._count(out)
        return out

    def single(
        self,
        datasets: Sequence[Dataset],
        query: str,
        metadata_filter: MetadataFilter | None,
        choose: ChooseDataset | None = None,
    ) -> list[Hit]:
        """Dify's `single` retrieval: one dataset, picked for the query, searched with its own settings.

        Dify lets the app's LLM pick through one tool per dataset (`router_tools`); `choose` is that
        call when the caller has an LLM (it returns a dataset id, or None for none). Without it the
        dataset whose name and description are nearest the query in the embedded model is picked."""
        if len(datasets) == 1:
            chosen: Dataset | None = datasets[0]
        elif choose is not None:
            picked = choose(router_tools([(d.id, d.name, d.description or None) for d in datasets]), query)
            chosen = next((d for d in datasets if d.id == picked), None)
        else:
            chosen = self._nearest(datasets, query)
        if chosen is None:
            return []
        base = self.settings_for(chosen, None)
        settings = RetrievalSettings(
            base.search_method, base.top_k, base.score_threshold, base.reranking_model, base.weights, metadata_filter
        )
        hits = self.search(chosen, query, settings, count_hits=False)
        self._count(hits)
        return hits

    def _nearest(self, datasets: Sequence[Dataset], query: str) -> Dataset:
        model = self._router_embedding()
        texts = [f"{d.name}: {d.description}" if d.description else d.name for d in datasets]
        vectors = np.asarray(model.embed(texts), dtype=np.float32)
        scores = vectors @ np.asarray(model.embed_query(query), dtype=np.float32)
        return datasets[int(np.argmax(scores))]

    def _count(self, hits: Sequence[Hit]) -> None:
        if hits:
            with self._db.session() as s:
                s.execute(
                    update(Segment)
                    .where(Segment.id.in_([h.segment.id for h in hits]))
                    .values(hit_count=Segment.hit_count + 1)
                )

    # --- hydration ------------------------------------------------------------------------------
    def _filter_ids(self, dataset: Dataset, flt: MetadataFilter | None) -> set[str] | None:
        if flt is None:
            return None
        with self._db.session() as s:
            fields = list(s.scalars(select(DatasetMetadataField).where(DatasetMetadataField.dataset_id == dataset.id)))
            docs = list(s.scalars(select(Document).where(Document.dataset_id == dataset.id)))
            allowed = [d.id for d in docs if flt.matches(metadata_by_name(d, fields, dataset.built_in_field_enabled))]
            if not allowed:
                return set()
            ids = set(s.scalars(select(Segment.index_node_id).where(Segment.document_id.in_(allowed))))
            ids |= set(s.scalars(select(ChildChunk.index_node_id).where(ChildChunk.document_id.in_(allowed))))
            return ids

    def _contents(self, node_ids: Sequence[str]) -> dict[str, str]:
        with self._db.session() as s:
            out = {
                r.index_node_id: r.content if not r.answer else f"{r.content}\n{r.answer}"
                for r in s.execute(
                    select(Segment.index_node_id, Segment.content, Segment.answer).where(
                        Segment.index_node_id.in_(list(node_ids))
                    )
                )
            }
            out.update(
                {
                    r.index_node_id: r.content
                    for r in s.execute(
                        select(ChildChunk.index_node_id, ChildChunk.content).where(
                            ChildChunk.index_node_id.in_(list(node_ids))
                        )
                    )
                }
            )
            return out

    def _segment_contents(self, segment_ids: Sequence[str]) -> dict[str, str]:
        with self._db.session() as s:
            return {
                r.id: r.content if not r.answer else f"{r.content}\n{r.answer}"
                for r in s.execute(
                    select(Segment.id, Segment.content, Segment.answer).where(Segment.id.in_(list(segment_ids)))
                )
            }

    def _hydrate(self, dataset: Dataset, scored: Sequence[ScoredChunk], top_k: int) -> list[Hit]:
        if not scored:
            return []
        ids = [h.chunk_id for h in scored]
        with self._db.session() as s:
            children = {
                c.index_node_id: c for c in s.scalars(select(ChildChunk).where(ChildChunk.index_node_id.in_(ids)))
            }
            seg_ids = {c.segment_id for c in children.values()}
            segs = list(s.scalars(select(Segment).where((Segment.index_node_id.in_(ids)) | (Segment.id.in_(seg_ids)))))
            by_node = {seg.index_node_id: seg for seg in segs}
            by_id = {seg.id: seg for seg in segs}
            docs = {
                d.id: d for d in s.scalars(select(Document).where(Document.id.in_({seg.document_id for seg in segs})))
            }
            fields = list(s.scalars(select(DatasetMetadataField).where(DatasetMetadataField.dataset_id == dataset.id)))
            s.expunge_all()

        def live(seg: Segment | None) -> bool:
            doc = docs.get(seg.document_id) if seg is not None else None
            return (
                seg is not None
                and doc is not None
                and seg.enabled
                and seg.status == "completed"
                and doc.enabled
                and not doc.archived
                and doc.indexing_status == "completed"
            )

        hits: list[Hit] = []
        child_hits = [h for h in scored if h.chunk_id in children]
        grouped = group_by_parent(child_hits, {cid: c.segment_id for cid, c in children.items()})
        parent_scores = {g.parent_id: g for g in grouped}
        seen: set[str] = set()
        for h in scored:
            if h.chunk_id in children:
                seg = by_id.get(children[h.chunk_id].segment_id)
                if seg is None or seg.id in seen or not live(seg):
                    continue
                group = parent_scores[seg.id]
                kids = [(children[c.chunk_id], c.score) for c in group.children]
                score = group.score
            else:
                seg = by_node.get(h.chunk_id)
                if seg is None or seg.id in seen or not live(seg):
                    continue
                kids, score = [], h.score
            seen.add(seg.id)
            doc = docs[seg.document_id]
            meta = metadata_by_name(doc, fields, dataset.built_in_field_enabled)
            hits.append(Hit(seg, doc, dataset, score, meta, tuple(kids)))
        return hits[:top_k]
