from __future__ import annotations

from pathlib import Path

import pytest

from openify.knowledge.keyword.bm25 import BM25KeywordIndex
from openify.knowledge.keyword.tokenizer import tokenize
from openify.registry import Registries

DOCS = {
    "zh1": "北京大学是中国著名的高等学府，位于北京市海淀区。",
    "zh2": "长江是亚洲第一长河，全长约六千三百公里。",
    "zh3": "上海是中国的经济中心，拥有繁忙的港口。",
    "en1": "Supersonic flow over a wing produces shock waves near the leading edge.",
    "en2": "Heat transfer in the laminar boundary layer of a flat plate.",
    "mix": "Openify 使用 BM25 与 jieba 分词实现关键词检索 keyword retrieval.",
}


def _index(r: Registries, directory: Path | None = None) -> BM25KeywordIndex:
    index = r.keyword_indexes.get("bm25")(directory)
    assert isinstance(index, BM25KeywordIndex)
    index.add(list(DOCS), list(DOCS.values()))
    return index


def test_tokenizer_mixes_jieba_and_stemmed_latin() -> None:
    tokens = tokenize("北京大学的学生 are studying Shock Waves")
    assert {"北京", "大学", "北京大学", "学生", "studi", "shock", "wave"} <= set(tokens)
    assert "的" not in tokens and "are" not in tokens


def test_chinese_and_english_queries(registries: Registries) -> None:
    index = _index(registries)
    assert index.search("北京的大学", 3)[0][0] == "zh1"
    assert index.search("长江有多长", 3)[0][0] == "zh2"
    assert index.search("shock wave on wings", 3)[0][0] == "en1"
    assert index.search("boundary layers", 3)[0][0] == "en2"
    assert index.search("jieba 关键词", 3)[0][0] == "mix"
    assert index.search("量子计算", 3) == []


def test_top_k_and_filter(registries: Registries) -> None:
    index = _index(registries)
    assert len(index.search("中国", 1)) == 1
    assert {cid for cid, _ in index.search("中国", 10)} == {"zh1", "zh3"}
    assert [cid for cid, _ in index.search("中国", 10, filter_ids={"zh3", "en1"})] == ["zh3"]


def test_delete_and_replace_take_effect_at_once(registries: Registries) -> None:
    index = _index(registries)
    index.search("长江", 1)
    rebuilds = index.rebuilds
    index.delete(["zh2"])
    assert index.search("长江", 3) == []
    assert index.rebuilds == rebuilds  # a delete masks; it does not rebuild
    index.add(["zh1"], ["黄河是中国第二长河。"])
    assert index.search("北京大学", 3) == []
    assert index.search("黄河", 3)[0][0] == "zh1"
    assert index.count() == len(DOCS) - 1


def test_persist_and_reload(registries: Registries, tmp_path: Path) -> None:
    index = _index(registries, tmp_path / "kw")
    index.delete(["en2"])
    index.persist()
    again = BM25KeywordIndex(tmp_path / "kw")
    assert again.count() == len(DOCS) - 1
    assert again.search("上海港口", 2) == index.search("上海港口", 2)
    assert again.search("boundary layer", 2) == []
    assert again.rebuilds == 0  # the saved matrix was loaded, not rebuilt


def test_added_chunks_score_exactly_as_in_a_rebuilt_matrix() -> None:
    import random

    words = "alpha beta gamma wing flow pressure shock boundary layer heat 北京 长江 大学".split()
    rng = random.Random(0)
    texts = [" ".join(rng.choices(words, k=rng.randint(3, 40))) for _ in range(500)]
    ids = [f"c{i}" for i in range(500)]
    delta = BM25KeywordIndex()
    delta.add(ids, texts)  # scored from postings, no matrix
    rebuilt = BM25KeywordIndex()
    rebuilt.add(ids, texts)
    rebuilt._rebuild()  # the matrix path, as after a large batch or a reload
    for query in ("shock wing", "heat heat layer", "北京 flow"):
        a, b = delta.search(query, 10), rebuilt.search(query, 10)
        assert [c for c, _ in a] == [c for c, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5)
    assert delta.rebuilds == 0 and rebuilt.rebuilds == 1


def test_large_filters_match_the_masked_ranking() -> None:
    import random

    words = "alpha beta gamma wing flow pressure shock boundary layer heat".split()
    rng = random.Random(1)
    ids = [f"c{i}" for i in range(4000)]
    index = BM25KeywordIndex()
    index.add(ids, [" ".join(rng.choices(words, k=rng.randint(3, 20))) for _ in ids])
    for share in (0.9, 0.6, 0.51):
        allowed = set(rng.sample(ids, int(len(ids) * share)))  # > 2000 ids: the post-filter path
        everything = index.search("shock heat", len(ids))
        want = [(c, s) for c, s in everything if c in allowed][:10]
        assert index.search("shock heat", 10, allowed) == want


def test_chunks_without_tokens_alone_persist_and_search(registries: Registries, tmp_path: Path) -> None:
    """Found by the contract test: deleting the last chunk with words left only token-less chunks (punctuation,
    symbols), and rebuilding the matrix over them raised inside bm25s, a 500 on DELETE of a document."""
    index: BM25KeywordIndex = registries.keyword_indexes.get("bm25")(tmp_path / "kw")
    index.add(["p1", "p2", "w"], ["\r]", "？！……", "shock waves"])
    index.delete(["w"])
    index.persist()
    assert index.search("shock", 3) == []
    index.add(["w2"], ["shock waves again"])
    assert index.search("shock", 3)[0][0] == "w2"
    reopened: BM25KeywordIndex = registries.keyword_indexes.get("bm25")(tmp_path / "kw")
    assert reopened.search("shock", 3) == []
