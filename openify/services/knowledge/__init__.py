"""Knowledge bases as one service: datasets, documents, chunks, tags, metadata, indexing and retrieval.

Other areas call `retrieve_for_app` (chat, completion and agent apps) and `retrieve_for_workflow`
(the knowledge-retrieval node); both return plain dicts in Dify's shapes.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

from openify.errors import Forbidden, InvalidParam, NotFound
from openify.jobs.base import JobRunner
from openify.knowledge.metadata_filter import MetadataFilter
from openify.knowledge.process_rule import MAX_SEGMENT_TOKENS
from openify.knowledge.retrieval import DEFAULT_TOP_K, Weights
from openify.providers.base import EmbeddingModel, ModelResolver
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits
from openify.services.knowledge.datasets import DatasetService
from openify.services.knowledge.documents import INDEX_JOB, DocumentService
from openify.services.knowledge.indexes import IndexManager, searchable_nodes
from openify.services.knowledge.metadata import MetadataService
from openify.services.knowledge.pipeline import IndexingPipeline
from openify.services.knowledge.retrieval import ChooseDataset, Hit, RetrievalService
from openify.services.knowledge.segments import SegmentService
from openify.services.knowledge.tags import TagService
from openify.services.signing_keys import signing_key
from openify.settings import Settings
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import App, Dataset, Document

__all__ = ["KnowledgeService", "citations", "retriever_resources"]


class KnowledgeService:
    def __init__(
        self,
        settings: Settings,
        registries: Registries,
        db: Database,
        blobs: BlobStore,
        models: ModelResolver,
        jobs: JobRunner,
    ) -> None:
        self._db, self._models, self._jobs, self._blobs = db, models, jobs, blobs
        self.indexes = IndexManager(
            db, registries, settings.data_dir, settings.vector.backend, self._embedding_for, settings.open_indexes
        )
        self.datasets = DatasetService(
            db,
            settings.embedding.default_model,
            self._check_embedding,
            on_delete=self._dataset_deleted,
            on_reembed=self.indexes.reset,
        )
        self.documents = DocumentService(
            db,
            blobs,
            jobs,
            registries,
            settings.upload.file_size_limit_mb,
            settings.embedding.default_model,
            self._check_embedding,
            self._index_document,
            self._unindex,
        )
        self.segments = SegmentService(db, self.indexes, self._dataset_row)
        self.tags = TagService(db)
        self.metadata = MetadataService(db)
        self.retrieval = RetrievalService(db, self.indexes, models.rerank, lambda: models.embedding(None, None))
        limits = DocumentLimits.of(settings.extraction)
        self.pipeline = IndexingPipeline(db, blobs, registries, self.indexes, MAX_SEGMENT_TOKENS, limits=limits)
        jobs.register(INDEX_JOB, self.pipeline, on_give_up=self.pipeline.give_up)

    def close(self) -> None:
        self.indexes.close()

    # --- signed download links ------------------------------------------------------------------
    def _signing_key(self) -> bytes:
        return signing_key(self._blobs, "document-download")

    def _sign(self, document_id: str, expires_at: int) -> str:
        return hmac.new(self._signing_key(), f"{document_id}|{expires_at}".encode(), hashlib.sha256).hexdigest()

    def signed_download_query(self, document_id: str, ttl_s: int = 3600) -> str:
        """`expires_at=…&sign=…` for a document's file link, valid for `ttl_s` seconds."""
        expires_at = int(time.time()) + ttl_s
        return f"expires_at={expires_at}&sign={self._sign(document_id, expires_at)}"

    def check_download(self, document_id: str, expires_at: int, sign: str) -> None:
        if expires_at < time.time() or not hmac.compare_digest(self._sign(document_id, expires_at), sign):
            raise Forbidden("The download link is invalid or has expired.")

    # --- wiring ---------------------------------------------------------------------------------
    def _dataset_deleted(self, dataset_id: str) -> None:
        """After the rows are gone: the index files and the documents' original files go too."""
        self.indexes.drop(dataset_id)
        shutil.rmtree(self._blobs.path(f"knowledge/{dataset_id}"), ignore_errors=True)

    def _embedding_for(self, dataset: Dataset) -> EmbeddingModel | None:
        if dataset.indexing_technique != "high_quality":
            return None
        return self._models.embedding(dataset.embedding_model_provider, dataset.embedding_model)

    def _check_embedding(self, provider: str | None, model: str | None) -> None:
        self._models.embedding(provider, model)  # raises provider_not_initialize / model_currently_not_support

    def _dataset_row(self, dataset_id: str) -> Dataset:
        row = self.datasets.find_row(dataset_id)
        if row is None:
            raise NotFound("Dataset not found.")
        return row

    def _index_document(self, document_id: str) -> None:
        with self._db.session() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                return
            dataset = s.get(Dataset, doc.dataset_id)
            nodes = searchable_nodes(s, doc.dataset_id, [document_id])
        if dataset is not None:
            self.indexes.add(dataset, nodes)

    def _unindex(self, dataset_id: str, node_ids: Sequence[str]) -> None:
        row = self.datasets.find_row(dataset_id)
        if row is not None:
            self.indexes.remove(row, node_ids)

    # --- retrieval for apps and workflows ------------------------------------------------------
    def retrieve_for_app(
        self,
        app: App,
        query: str,
        dataset_configs: Mapping[str, Any] | None,
        end_user_id: str | None,
        choose_dataset: ChooseDataset | None = None,
    ) -> list[dict[str, Any]]:
        """Dify's app retrieval (`model_config.dataset_configs`): Dify `retriever_resources` dicts,
        deduplicated by segment and numbered from 1, best first. `end_user_id` is unused (Dify logs it).

        `choose_dataset(tools, query) -> dataset id | None` is the app's LLM picking a dataset in `single`
        mode, as Dify does; without it the dataset whose name and description are nearest is used."""
        del end_user_id
        configs = dict(dataset_configs or {})
        ids = _dataset_ids(configs, app.model_config_ or {})
        datasets = self.retrieval.datasets(ids)
        if not datasets or not query.strip():
            return []
        flt = (
            MetadataFilter.from_dify(configs.get("metadata_filtering_conditions"))
            if configs.get("metadata_filtering_mode") == "manual"
            else None
        )
        mode = configs.get("retrieval_model") or ("multiple" if not dataset_configs else "single")
        if mode == "single":
            hits = self.retrieval.single(datasets, query, flt, choose_dataset)
        else:
            top_k, threshold, rerank, weights = _multiple_settings(
                configs, "reranking_model_name", "reranking_provider_name"
            )
            hits = self.retrieval.multiple(datasets, query, top_k, threshold, rerank, weights, flt)
        return retriever_resources(hits, "api")

    def retrieve_for_workflow(
        self,
        dataset_ids: Sequence[str],
        query: str,
        config: Mapping[str, Any],
        choose_dataset: ChooseDataset | None = None,
    ) -> list[dict[str, Any]]:
        """The knowledge-retrieval node: its `result` items `{content, title, files, summary, metadata}`;
        `choose_dataset` as in `retrieve_for_app` (the node's `single_retrieval_config.model`)."""
        datasets = self.retrieval.datasets(list(dataset_ids))
        if not datasets or not query.strip():
            return []
        flt = (
            MetadataFilter.from_dify(config.get("metadata_filtering_conditions"))
            if config.get("metadata_filtering_mode") == "manual"
            else None
        )
        if config.get("retrieval_mode") == "single":
            hits = self.retrieval.single(datasets, query, flt, choose_dataset)
        else:
            multiple = dict(config.get("multiple_retrieval_config") or {})
            top_k, threshold, rerank, weights = _multiple_settings(multiple, "model", "provider")
            hits = self.retrieval.multiple(datasets, query, top_k, threshold, rerank, weights, flt)
        out = []
        for r in retriever_resources(hits, "workflow"):
            out.append(
                {
                    "content": r["content"],
                    "title": r["title"],
                    "files": r["files"],
                    "summary": r["summary"],
                    "metadata": {
                        "_source": "knowledge",
                        "dataset_id": r["dataset_id"],
                        "dataset_name": r["dataset_name"],
                        "document_id": r["document_id"],
                        "document_name": r["document_name"],
                        "data_source_type": r["data_source_type"],
                        "segment_id": r["segment_id"],
                        "retriever_from": "workflow",
                        "score": r["score"],
                        "position": r["position"],
                        "doc_metadata": r["doc_metadata"],
                        "segment_hit_count": r["hit_count"],
                        "segment_word_count": r["word_count"],
                        "segment_position": r["segment_position"],
                        "segment_index_node_hash": r["index_node_hash"],
                    },
                }
            )
        return out


def _dataset_ids(configs: Mapping[str, Any], model_config: Mapping[str, Any]) -> list[str]:
    ids: list[str] = []
    holder = configs.get("datasets") or {}
    entries = holder.get("datasets", []) if isinstance(holder, Mapping) else holder
    tools = (model_config.get("agent_mode") or {}).get("tools") or []  # very old apps list datasets as tools
    for entry in [*(entries or []), *tools]:
        ds = entry.get("dataset") if isinstance(entry, Mapping) else None
        if isinstance(ds, Mapping) and ds.get("enabled", True) and isinstance(ds.get("id"), str):
            ids.append(ds["id"])
    return list(dict.fromkeys(ids))


def _multiple_settings(
    c: Mapping[str, Any], model_key: str, provider_key: str
) -> tuple[int, float | None, tuple[str, str] | None, Weights | None]:
    top_k = c.get("top_k") or DEFAULT_TOP_K
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidParam("dataset_configs.top_k must be a positive integer")
    threshold = None
    if c.get("score_threshold_enabled") and c.get("score_threshold") is not None:
        threshold = float(c["score_threshold"])
    rerank = None
    enabled = c.get("reranking_enable", c.get("reranking_enabled", False))
    model = c.get("reranking_model") or {}
    if enabled and c.get("reranking_mode", "reranking_model") == "reranking_model" and isinstance(model, Mapping):
        name = model.get(model_key) or model.get("reranking_model_name")
        if name:
            rerank = (str(model.get(provider_key) or model.get("reranking_provider_name") or ""), str(name))
    weights = None
    w = c.get("weights")
    if c.get("reranking_mode") == "weighted_score" and isinstance(w, Mapping):
        try:
            weights = Weights(
                float((w.get("vector_setting") or {}).get("vector_weight", 0.3)),
                float((w.get("keyword_setting") or {}).get("keyword_weight", 0.7)),
            )
        except (TypeError, ValueError):
            raise InvalidParam("dataset_configs.weights must be numbers") from None
    return min(top_k, 100), threshold, rerank, weights


def retriever_resources(hits: Sequence[Hit], retriever_from: str) -> list[dict[str, Any]]:
    """Dify's `retriever_resources` items for hits, deduplicated by segment and numbered from 1."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for h in hits:
        if h.segment.id in seen:
            continue
        seen.add(h.segment.id)
        seg, doc = h.segment, h.document
        content = seg.content if not seg.answer else f"question:{seg.content} \nanswer:{seg.answer}"
        out.append(
            {
                "position": len(out) + 1,
                "dataset_id": h.dataset.id,
                "dataset_name": h.dataset.name,
                "document_id": doc.id,
                "document_name": doc.name,
                "data_source_type": doc.data_source_type,
                "segment_id": seg.id,
                "retriever_from": retriever_from,
                "score": h.score,
                "hit_count": seg.hit_count,
                "word_count": seg.word_count,
                "segment_position": seg.position,
                "index_node_hash": seg.index_node_hash,
                "content": content,
                "page": None,
                "doc_metadata": dict(h.doc_metadata) or None,
                "title": doc.name,
                "files": [],
                "summary": None,
            }
        )
    return out


def citations(resources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What `message_end` shows: Dify keeps the first resource of each (dataset, document) and renumbers
    from 1 (MessageCycleManager.handle_retriever_resources); the prompt still gets every chunk."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for r in resources:
        key = (str(r.get("dataset_id")), str(r.get("document_id")))
        if key not in seen:
            seen.add(key)
            out.append({**r, "position": len(out) + 1})
    return out
