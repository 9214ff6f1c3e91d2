from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from openify.errors import InvalidParam
from openify.knowledge.layout import index_chunks, open_indexes, persist, remove_chunks
from openify.knowledge.metadata_filter import MetadataFilter, allowed_ids
from openify.knowledge.retrieval import (
    DatasetIndexes,
    RetrievalSettings,
    ScoredChunk,
    Weights,
    group_by_parent,
    hybrid_search,
    merge_datasets,
    retrieve,
    router_tools,
)
from openify.registry import Registries
from tests.knowledge.conftest import CountingUsem3

CHUNKS = {
    "c1": "The cat sat on the warm windowsill all afternoon.",
    "c2": "Kittens and cats love to sleep in sunny places.",
    "c3": "Quarterly revenue rose by twelve percent in 2024.",
    "c4": "长江是中国最长的河流，全长约六千三百公里。",
    "c5": "熊猫是中国的国宝，主要生活在四川的山林中。",
    "c6": "Invoice INV-7731 must be paid within thirty days.",
}
META: dict[str, dict[str, Any]] = {
    "c1": {"author": "Ann", "year": 2021, "published": "2021-05-01", "tags": "pets,home"},
    "c2": {"author": "Bob", "year": 2023, "published": "2023-02-11", "tags": "pets"},
    "c3": {"author": "Ann", "year": 2024, "published": "2024-10-01", "tags": "finance"},
    "c4": {"author": "李雷", "year": 2019, "published": "2019-01-01"},
    "c5": {"author": "韩梅梅", "year": 2020, "published": 1577836800},
    "c6": {"author": "", "year": None},
}


class WordOverlapReranker:
    """A small deterministic rerank model: the share of query words found in the document."""

    name = "overlap"

    def rerank(self, query: str, documents: Sequence[str], top_n: int | None = None) -> list[tuple[int, float]]:
        words = set(query.lower().split())
        scores = [
            (i, len(words & set(d.lower().replace(".", "").split())) / len(words)) for i, d in enumerate(documents)
        ]
        return sorted(scores, key=lambda s: -s[1])[:top_n]


@pytest.fixture
def dataset(registries: Registries, embedding: CountingUsem3, tmp_path: Path) -> DatasetIndexes:
    indexes = open_indexes(registries, tmp_path, "ds1", embedding)
    index_chunks(indexes, list(CHUNKS), list(CHUNKS.values()))
    return indexes


def _ids(hits: Sequence[ScoredChunk]) -> list[str]:
    return [h.chunk_id for h in hits]


def _settings(method: str, **extra: Any) -> RetrievalSettings:
    return RetrievalSettings.from_dify({"search_method": method, "reranking_enable": False, "top_k": 3, **extra})


def test_semantic_search_finds_meaning_not_words(dataset: DatasetIndexes) -> None:
    hits = retrieve(dataset, "a kitten napping in the sun", _settings("semantic_search"))
    assert set(_ids(hits)[:2]) == {"c1", "c2"}
    assert all(0 <= h.score <= 1 for h in hits)
    assert _ids(retrieve(dataset, "哪条河最长", _settings("semantic_search")))[0] == "c4"


def test_full_text_and_keyword_search(dataset: DatasetIndexes) -> None:
    hits = retrieve(dataset, "INV-7731 invoice", _settings("full_text_search"))
    assert _ids(hits) == ["c6"] and hits[0].score == 1.0
    assert _ids(retrieve(dataset, "熊猫 四川", _settings("keyword_search")))[0] == "c5"


def test_economy_datasets_search_keywords_only(registries: Registries, tmp_path: Path) -> None:
    economy = open_indexes(registries, tmp_path, "eco")
    index_chunks(economy, list(CHUNKS), list(CHUNKS.values()))
    settings = RetrievalSettings.from_dify({"search_method": "semantic_search", "top_k": 2}, "economy")
    assert settings.search_method == "keyword_search"
    assert _ids(retrieve(economy, "长江 河流", settings)) == ["c4"]


def test_hybrid_weights_move_the_ranking(dataset: DatasetIndexes) -> None:
    assert dataset.vectors is not None and dataset.embedding is not None
    query = "cats windowsill revenue"

    def run(v: float, k: float) -> list[str]:
        assert dataset.vectors is not None and dataset.embedding is not None
        return _ids(hybrid_search(dataset.vectors, dataset.keyword, dataset.embedding, query, 6, Weights(v, k)))

    keyword_only, vector_only = run(0.0, 1.0), run(1.0, 0.0)
    kw = dict(dataset.keyword.search(query, 6))
    assert keyword_only[: len(kw)] == sorted(kw, key=lambda c: -kw[c])
    vec = dataset.vectors.search(dataset.embedding.embed_query(query), 6)
    assert vector_only == [c for c, _ in vec]
    mixed = hybrid_search(dataset.vectors, dataset.keyword, dataset.embedding, query, 6, Weights(0.5, 0.5))
    assert all(0 <= h.score <= 1 for h in mixed) and mixed[0].score > mixed[-1].score
    settings = _settings(
        "hybrid_search",
        weights={
            "weight_type": "customized",
            "vector_setting": {"vector_weight": 0.2},
            "keyword_setting": {"keyword_weight": 0.8},
        },
    )
    assert settings.weights == Weights(0.2, 0.8)


def test_rerank_model(dataset: DatasetIndexes) -> None:
    settings = _settings(
        "hybrid_search",
        reranking_enable=True,
        reranking_mode="reranking_model",
        reranking_model={"reranking_provider_name": "x", "reranking_model_name": "overlap"},
    )
    hits = retrieve(
        dataset,
        "invoice must be paid",
        settings,
        reranker=WordOverlapReranker(),
        contents=lambda ids: {i: CHUNKS[i] for i in ids},
    )
    assert hits[0] == ScoredChunk("c6", 1.0)


def test_score_threshold_and_top_k(dataset: DatasetIndexes) -> None:
    loose = retrieve(dataset, "cats", _settings("semantic_search", top_k=5))
    assert len(loose) == 5
    cut = loose[1].score
    strict = retrieve(
        dataset, "cats", _settings("semantic_search", top_k=5, score_threshold_enabled=True, score_threshold=cut)
    )
    assert _ids(strict) == _ids(loose)[:2]


def test_deletes_remove_results_from_every_index_at_once(dataset: DatasetIndexes) -> None:
    for method in ("semantic_search", "full_text_search", "hybrid_search"):
        assert "c6" in _ids(retrieve(dataset, "invoice INV-7731 payment", _settings(method)))
    remove_chunks(dataset, ["c6"])
    for method in ("semantic_search", "full_text_search", "hybrid_search"):
        assert "c6" not in _ids(retrieve(dataset, "invoice INV-7731 payment", _settings(method)))


def test_dataset_persists_and_reopens(
    registries: Registries, embedding: CountingUsem3, tmp_path: Path, dataset: DatasetIndexes
) -> None:
    remove_chunks(dataset, ["c1"])
    persist(dataset)
    again = open_indexes(registries, tmp_path, "ds1", embedding)
    assert again.keyword.count() == again.vectors.count() == len(CHUNKS) - 1  # type: ignore[union-attr]  # high_quality
    for method in ("semantic_search", "full_text_search", "hybrid_search"):
        assert retrieve(again, "cats sleeping", _settings(method)) == retrieve(
            dataset, "cats sleeping", _settings(method)
        )
    assert (tmp_path / "knowledge" / "datasets" / "ds1" / "vectors" / "hnswlib" / "index.bin").exists()


@pytest.mark.parametrize(
    ("conditions", "logical", "expected"),
    [
        ([{"name": "author", "comparison_operator": "is", "value": "Ann"}], "and", {"c1", "c3"}),
        ([{"name": "author", "comparison_operator": "is not", "value": "Ann"}], "and", {"c2", "c4", "c5", "c6"}),
        ([{"name": "author", "comparison_operator": "contains", "value": "梅"}], "and", {"c5"}),
        ([{"name": "author", "comparison_operator": "not contains", "value": "n"}], "and", {"c2", "c4", "c5", "c6"}),
        ([{"name": "author", "comparison_operator": "start with", "value": "B"}], "and", {"c2"}),
        ([{"name": "author", "comparison_operator": "end with", "value": "雷"}], "and", {"c4"}),
        ([{"name": "author", "comparison_operator": "empty"}], "and", {"c6"}),
        ([{"name": "author", "comparison_operator": "not empty"}], "and", {"c1", "c2", "c3", "c4", "c5"}),
        ([{"name": "author", "comparison_operator": "in", "value": ["Bob", "李雷"]}], "and", {"c2", "c4"}),
        ([{"name": "author", "comparison_operator": "not in", "value": "Ann,Bob"}], "and", {"c4", "c5", "c6"}),
        ([{"name": "year", "comparison_operator": "=", "value": 2023}], "and", {"c2"}),
        ([{"name": "year", "comparison_operator": "≠", "value": "2023"}], "and", {"c1", "c3", "c4", "c5"}),
        ([{"name": "year", "comparison_operator": ">", "value": 2021}], "and", {"c2", "c3"}),
        ([{"name": "year", "comparison_operator": "<", "value": 2020}], "and", {"c4"}),
        ([{"name": "year", "comparison_operator": "≥", "value": 2023}], "and", {"c2", "c3"}),
        ([{"name": "year", "comparison_operator": "≤", "value": 2020}], "and", {"c4", "c5"}),
        ([{"name": "published", "comparison_operator": "before", "value": "2020-06-01"}], "and", {"c4", "c5"}),
        ([{"name": "published", "comparison_operator": "after", "value": 1600000000}], "and", {"c1", "c2", "c3"}),
        (
            [
                {"name": "author", "comparison_operator": "is", "value": "Ann"},
                {"name": "year", "comparison_operator": ">", "value": 2022},
            ],
            "and",
            {"c3"},
        ),
        (
            [
                {"name": "author", "comparison_operator": "is", "value": "Bob"},
                {"name": "year", "comparison_operator": "<", "value": 2020},
            ],
            "or",
            {"c2", "c4"},
        ),
    ],
)
def test_metadata_filter_operators(conditions: list[dict[str, Any]], logical: str, expected: set[str]) -> None:
    flt = MetadataFilter.from_dify({"logical_operator": logical, "conditions": conditions})
    assert allowed_ids(META.items(), flt) == expected


def test_metadata_filter_applies_before_ranking(dataset: DatasetIndexes) -> None:
    settings = _settings(
        "hybrid_search",
        metadata_filtering_conditions={
            "logical_operator": "and",
            "conditions": [{"name": "author", "comparison_operator": "is", "value": "Ann"}],
        },
    )
    allowed = allowed_ids(META.items(), settings.metadata_filter)
    assert allowed is not None
    hits = retrieve(dataset, "cats sleeping in the sun", settings, filter_ids=allowed)
    assert set(_ids(hits)) <= {"c1", "c3"} and _ids(hits)[0] == "c1"
    assert retrieve(dataset, "cats", settings, filter_ids=set()) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"search_method": "fuzzy"},
        {"top_k": 0},
        {"top_k": "3"},
        {"score_threshold_enabled": True, "score_threshold": 2},
        {"reranking_enable": True, "reranking_mode": "reranking_model"},
        {"weights": {"vector_setting": {"vector_weight": "heavy"}}},
        {"metadata_filtering_conditions": {"conditions": [{"name": "a", "comparison_operator": "like"}]}},
        {"metadata_filtering_conditions": {"logical_operator": "xor", "conditions": []}},
    ],
)
def test_bad_retrieval_models_are_invalid_param(bad: Mapping[str, Any]) -> None:
    with pytest.raises(InvalidParam):
        RetrievalSettings.from_dify(bad)


def test_multiple_retrieval_merges_datasets() -> None:
    results = {
        "dsA": [ScoredChunk("a1", 0.9), ScoredChunk("a2", 0.4)],
        "dsB": [ScoredChunk("b1", 0.7), ScoredChunk("b2", 0.65)],
    }
    merged = merge_datasets(results, "q", top_k=3, score_threshold=0.5)
    assert [(h.chunk_id, h.dataset_id) for h in merged] == [("a1", "dsA"), ("b1", "dsB"), ("b2", "dsB")]
    texts = {"a1": "nothing here", "a2": "paid invoice", "b1": "invoice", "b2": "other"}
    reranked = merge_datasets(
        results,
        "paid invoice",
        top_k=2,
        reranker=WordOverlapReranker(),
        contents=lambda ids: {i: texts[i] for i in ids},
    )
    assert [(h.chunk_id, h.dataset_id, h.score) for h in reranked] == [("a2", "dsA", 1.0), ("b1", "dsB", 0.5)]


def test_single_retrieval_router_tools_and_parent_grouping() -> None:
    tools = router_tools([("ds1", "HR handbook", None), ("ds2", "Finance", "Invoices\nand payments")])
    assert [t.name for t in tools] == ["ds1", "ds2"]
    assert tools[0].description == "useful for when you want to answer queries about the HR handbook"
    assert tools[1].description == "Invoices and payments"
    hits = [ScoredChunk("k1", 0.9), ScoredChunk("k2", 0.5), ScoredChunk("k3", 0.8)]
    parents = group_by_parent(hits, {"k1": "p1", "k2": "p2", "k3": "p1"})
    assert [(p.parent_id, p.score, [c.chunk_id for c in p.children]) for p in parents] == [
        ("p1", 0.9, ["k1", "k3"]),
        ("p2", 0.5, ["k2"]),
    ]
