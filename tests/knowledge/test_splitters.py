from __future__ import annotations

from typing import Any

import pytest

from openify.errors import InvalidParam
from openify.knowledge.chunks import Chunk
from openify.knowledge.extractors import Extracted, ExtractionError
from openify.knowledge.process_rule import ProcessRule, unescape_separator
from openify.knowledge.splitters import split_document
from openify.registry import Registries
from openify.tokens import count_tokens

EN = " ".join(
    f"Paragraph {i} explains how the wing of an aircraft produces lift at subsonic speed. "
    f"The pressure on the upper surface is lower than below; the difference lifts plane number {i}."
    for i in range(60)
)
ZH = "".join(
    f"第{i}段：长江是中国最长的河流，全长约六千三百公里，流经十一个省级行政区。"
    f"它孕育了灿烂的文化；沿岸城市众多，经济发达！你知道它的源头在哪里吗？"
    for i in range(60)
)


def _custom(separator: str, max_tokens: int, overlap: int = 0, **pre: bool) -> dict[str, Any]:
    rules = [{"id": k, "enabled": v} for k, v in pre.items()]
    return {
        "mode": "custom",
        "rules": {
            "pre_processing_rules": rules,
            "segmentation": {"separator": separator, "max_tokens": max_tokens, "chunk_overlap": overlap},
        },
    }


def _joined_covers(chunks: list[Chunk], text: str) -> None:
    # every sentence of the source survives somewhere
    for sentence in [s for s in text.replace("！", "。").replace("？", "。").split("。") if s.strip()][:20]:
        assert any(sentence.strip()[:12] in c.content for c in chunks), sentence


@pytest.mark.parametrize("text", [EN, ZH], ids=["en", "zh"])
def test_automatic_rule_500_tokens_with_overlap(registries: Registries, text: str) -> None:
    chunks = split_document(registries.splitters, text, {"mode": "automatic"})
    assert len(chunks) > 3
    assert all(c.tokens <= 500 and c.tokens == count_tokens(c.content) for c in chunks)
    assert [c.position for c in chunks] == list(range(1, len(chunks) + 1))
    # Dify's automatic overlap (50 tokens): each chunk starts with a sentence the previous one ended with.
    assert sum(chunks[i + 1].content[:15] in chunks[i].content for i in range(len(chunks) - 1)) >= len(chunks) // 2
    _joined_covers(chunks, text)


def test_chinese_is_cut_at_its_own_punctuation(registries: Registries) -> None:
    chunks = split_document(registries.splitters, ZH, _custom("\\n\\n", 60, 0))
    assert all(c.tokens <= 60 for c in chunks)
    assert all(c.content[-1] in "。！？；，、：" for c in chunks[:-1]), [c.content[-3:] for c in chunks[:5]]
    assert not any(c.content.startswith(("。", "，")) for c in chunks)


def test_custom_separator_escape_and_no_merge(registries: Registries) -> None:
    text = "alpha one\n\nbeta two\n\ngamma three"
    chunks = split_document(registries.splitters, text, _custom("\\n\\n", 100))
    assert [c.content for c in chunks] == ["alpha one", "beta two", "gamma three"]
    assert unescape_separator("\\n\\n") == "\n\n" and unescape_separator("###") == "###"
    assert unescape_separator("。") == "。"


def test_custom_long_piece_split_with_overlap(registries: Registries) -> None:
    chunks = split_document(registries.splitters, EN, _custom("###", 80, 20))
    assert len(chunks) > 10
    assert all(c.tokens <= 80 for c in chunks)
    overlaps = sum(chunks[i + 1].content[:20] in chunks[i].content for i in range(len(chunks) - 1))
    assert overlaps >= len(chunks) // 2
    no_overlap = split_document(registries.splitters, EN, _custom("###", 80, 0))
    assert sum(no_overlap[i + 1].content[:20] in no_overlap[i].content for i in range(len(no_overlap) - 1)) == 0


def test_text_without_any_separator_is_cut_on_tokens(registries: Registries) -> None:
    chunks = split_document(registries.splitters, "无" * 3000, _custom("\\n", 100, 10))
    assert all(c.tokens <= 100 for c in chunks)
    assert "".join(c.content for c in chunks).count("无") >= 3000


def test_pre_processing_rules(registries: Registries) -> None:
    text = "Mail me at a.b@example.com  or   see https://example.com/x  ![img](https://img.io/a.png)\n\n\n\nEnd"
    kept = split_document(registries.splitters, text, _custom("\\n\\n", 200, remove_extra_spaces=False))
    assert "a.b@example.com  or   see" in kept[0].content
    cleaned = split_document(
        registries.splitters, text, _custom("\\n\\n", 200, remove_extra_spaces=True, remove_urls_emails=True)
    )
    assert cleaned[0].content == "Mail me at or see ![img](https://img.io/a.png)"
    assert cleaned[1].content == "End"


@pytest.mark.parametrize("text", [EN, ZH], ids=["en", "zh"])
@pytest.mark.parametrize("parent_mode", ["paragraph", "full-doc"])
def test_hierarchical(registries: Registries, text: str, parent_mode: str) -> None:
    rule = {
        "mode": "hierarchical",
        "rules": {
            "pre_processing_rules": [{"id": "remove_extra_spaces", "enabled": True}],
            "parent_mode": parent_mode,
            "segmentation": {"separator": "\\n\\n", "max_tokens": 300},
            "subchunk_segmentation": {"separator": "。", "max_tokens": 60, "chunk_overlap": 0},
        },
    }
    parents = split_document(registries.splitters, text, rule, "hierarchical_model")
    if parent_mode == "full-doc":
        assert len(parents) == 1 and parents[0].content == text.strip()
    else:
        assert len(parents) > 1 and all(p.tokens <= 300 for p in parents)
    for p in parents:
        assert p.children and all(c.tokens <= 60 and c.content in p.content for c in p.children)
        assert [c.position for c in p.children] == list(range(1, len(p.children) + 1))


def test_qa_from_text_and_table(registries: Registries) -> None:
    text = "Q: What is Openify?\nA: A server that speaks the Dify API.\n\n问：支持中文吗？\n答：支持，分词用 jieba。"
    chunks = split_document(registries.splitters, text, None, "qa_model")
    assert [(c.content, c.answer) for c in chunks] == [
        ("What is Openify?", "A server that speaks the Dify API."),
        ("支持中文吗？", "支持，分词用 jieba。"),
    ]
    assert chunks[0].word_count == len(chunks[0].content) + len(chunks[0].answer or "")
    table = Extracted("", (("问题", "答案"), ("年假几天？", "十五天"), ("", "skipped")))
    assert [(c.content, c.answer) for c in split_document(registries.splitters, table, None, "qa_model")] == [
        ("年假几天？", "十五天")
    ]
    with pytest.raises(ExtractionError, match="no question/answer pairs"):
        split_document(registries.splitters, "just prose", None, "qa_model")


def test_chunk_fields_and_hash(registries: Registries) -> None:
    [c] = split_document(registries.splitters, "你好，世界", _custom("\\n", 100))
    assert (c.content, c.position, c.word_count, c.tokens) == ("你好，世界", 1, 5, count_tokens("你好，世界"))
    assert len(c.hash) == 64


@pytest.mark.parametrize(
    "rule",
    [
        {"mode": "bogus"},
        _custom("\\n", 10),
        _custom("\\n", 5000),
        _custom("\\n", 100, 100),
        {"mode": "custom", "rules": {"segmentation": {"separator": "\n", "max_tokens": "100"}}},
        {
            "mode": "custom",
            "rules": {"pre_processing_rules": [{"id": "nope", "enabled": True}], "segmentation": {"max_tokens": 100}},
        },
        {"mode": "hierarchical", "rules": {"parent_mode": "chapter", "segmentation": {"max_tokens": 100}}},
    ],
)
def test_bad_process_rules_are_invalid_param(rule: dict[str, Any]) -> None:
    with pytest.raises(InvalidParam):
        ProcessRule.from_dify(rule)


def test_bad_doc_form() -> None:
    with pytest.raises(InvalidParam):
        ProcessRule.from_dify(None, "paragraph_model")
