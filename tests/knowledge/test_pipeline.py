"""The indexing job's path end to end: a file, extracted, split, indexed, searched, changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from openify.knowledge.extractors import extract
from openify.knowledge.layout import dataset_dir, index_chunks, open_indexes, persist, remove_chunks
from openify.knowledge.retrieval import RetrievalSettings, group_by_parent, retrieve
from openify.knowledge.splitters import split_document
from openify.registry import Registries
from tests.knowledge.conftest import CountingUsem3
from tests.knowledge.test_extractors import _docx

HANDBOOK = """员工手册

第一章 假期。员工每年享有十五天带薪年假，年假须提前两周申请。病假需要医院证明。

第二章 报销。差旅费用在出差结束后三十天内凭发票报销，超过期限不予受理。

Chapter 3 Security. Laptops must use full-disk encryption. Passwords are rotated every ninety days.
"""


def test_hierarchical_document_from_file_to_parent_hits(
    registries: Registries, embedding: CountingUsem3, tmp_path: Path
) -> None:
    extracted = extract(registries.extractors, "handbook.txt", HANDBOOK.encode())
    rule = {
        "mode": "hierarchical",
        "rules": {
            "pre_processing_rules": [{"id": "remove_extra_spaces", "enabled": True}],
            "parent_mode": "paragraph",
            "segmentation": {"separator": "\\n\\n", "max_tokens": 500},
            "subchunk_segmentation": {"separator": "。", "max_tokens": 50},
        },
    }
    parents = split_document(registries.splitters, extracted, rule, "hierarchical_model")
    assert [p.content[:3] for p in parents] == ["员工手", "第一章", "第二章", "Cha"]
    indexes = open_indexes(registries, tmp_path, "handbook", embedding)
    parent_of, ids, texts = {}, [], []
    for p in parents:
        for c in p.children:
            cid = f"p{p.position}-c{c.position}"
            parent_of[cid] = f"p{p.position}"
            ids.append(cid)
            texts.append(c.content)
    index_chunks(indexes, ids, texts)
    persist(indexes)
    settings = RetrievalSettings.from_dify({"search_method": "hybrid_search", "top_k": 3})
    hits = group_by_parent(retrieve(indexes, "年假有几天", settings), parent_of)
    assert hits[0].parent_id == "p2"
    hits = group_by_parent(retrieve(indexes, "how often are passwords changed", settings), parent_of)
    assert hits[0].parent_id == "p4"
    # Disabling the security chapter removes its children from every index at once.
    remove_chunks(indexes, [cid for cid, parent in parent_of.items() if parent == "p4"])
    hits = group_by_parent(retrieve(indexes, "passwords encryption laptops", settings), parent_of)
    assert all(h.parent_id != "p4" for h in hits)


def test_docx_qa_and_economy_dataset(registries: Registries, tmp_path: Path) -> None:
    text = extract(registries.extractors, "report.docx", _docx()).text
    chunks = split_document(registries.splitters, text, {"mode": "automatic"})
    economy = open_indexes(registries, tmp_path, "eco")
    index_chunks(economy, [f"c{c.position}" for c in chunks], [c.index_text for c in chunks])
    settings = RetrievalSettings.from_dify(None, "economy")
    assert retrieve(economy, "上海 销量", settings)[0].chunk_id == "c1"


def test_dataset_dir_rejects_path_tricks(tmp_path: Path) -> None:
    assert dataset_dir(tmp_path, "abc") == tmp_path / "knowledge" / "datasets" / "abc"
    for bad in ("", "..", "a/b", "..\\x"):
        with pytest.raises(ValueError, match="bad dataset id"):
            dataset_dir(tmp_path, bad)


def test_open_indexes_are_shared_in_process(registries: Registries, embedding: CountingUsem3, tmp_path: Path) -> None:
    from openify.knowledge.layout import OpenIndexes

    opened = OpenIndexes(registries, tmp_path)
    writer = opened.get("ds", embedding)
    index_chunks(writer, ["a", "b"], ["长江是中国最长的河流。", "The wing produces lift."])
    reader = opened.get("ds", embedding)
    assert reader is writer
    settings = RetrievalSettings.from_dify({"search_method": "hybrid_search", "top_k": 2})
    assert next(h.chunk_id for h in retrieve(reader, "长江 河流", settings)) == "a"
    remove_chunks(writer, ["a"])
    assert [h.chunk_id for h in retrieve(reader, "长江 河流", settings)] == ["b"]  # "a" is gone for the reader
    opened.drop("ds")
    assert opened.get("ds", embedding) is not writer
