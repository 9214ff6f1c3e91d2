"""Every path that scans user or document text, fed 1 MB of the input that is worst for it, must stay linear;
and a small crafted file must be refused by a cap, not expanded in memory.

A scan passes when 1 MB takes under BOUND_S, or (slow but linear: jieba on CJK, BeautifulSoup on deeply nested
tags) under three times what half of it takes; a quadratic scan of 1 MB takes minutes to hours and fails both.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from openify.engine.model_calls import clean_prompt
from openify.engine.nodes.document_extractor import extract_text
from openify.engine.nodes.llm import parse_json_reply, split_think
from openify.knowledge.cleaner import clean
from openify.knowledge.extractors import ExtractionError, extract
from openify.knowledge.keyword.tokenizer import tokenize
from openify.knowledge.process_rule import ProcessRule
from openify.knowledge.splitters import split_document
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits, DocumentTooLarge
from openify.services.chat.agent import _parse_react
from openify.services.chat.prompts import render
from openify.tokens import count_tokens

MB = 1_000_000
BOUND_S = 3.0

# The worst inputs of each scanner: long runs of one character class, openers without closers, and their mixes.
HOSTILE: dict[str, str] = {
    "special tokens": "<|" * (MB // 2),
    "special tokens on lines": "<|\n" * (MB // 3) + "|>",
    "brackets": "[" * MB,
    "link openers": "[a](" * (MB // 4),
    "link targets": "[a](x(y" * (MB // 7),
    "images": "![x](http://" * (MB // 12),
    "image openers": "![" * (MB // 2),
    "letters": "a" * MB,
    "address parts": "a.b-" * (MB // 4),
    "ats": "a@" * (MB // 2),
    "urls": "http://" * (MB // 7),
    "blanks": " \t" * (MB // 2),
    "qa mark and blanks": "Q" + " " * MB,
    "think": "<think>" * (MB // 7),
    "fences": "```{" * (MB // 4),
    "braces": "{" * MB,
    "action": '{"action"' * (MB // 9),
    "template refs": "{{#a.b" * (MB // 6),
    "cjk": "中文" * (MB // 6),  # 1 MB of UTF-8
    "apostrophes": "a'" * (MB // 2),
    "unclosed attributes": "<a href='" * (MB // 9),
    "unclosed comments": "<!--" * (MB // 4),
    "angles": "<" * MB,
}
COMMON = ("letters", "cjk", "blanks", "special tokens")


def _timed(fn: Callable[[str], Any], text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


def _superlinear(fn: Callable[[str], Any], text: str) -> float | None:
    """The seconds `fn` took on `text` if that looks worse than linear, else None."""
    full = _timed(fn, text)
    if full < BOUND_S or full < 3 * _timed(fn, text[: len(text) // 2]):
        return None
    return full


RULE = ProcessRule.from_dify(
    {
        "mode": "custom",
        "rules": {
            "pre_processing_rules": [
                {"id": "remove_extra_spaces", "enabled": True},
                {"id": "remove_urls_emails", "enabled": True},
            ],
            "segmentation": {"separator": "\n\n", "max_tokens": 500},
        },
    }
)

# Each scan with the common runs and the inputs made for it.
SCANS: dict[str, tuple[Callable[[str], Any], tuple[str, ...]]] = {
    "clean_prompt": (clean_prompt, ("special tokens on lines", "angles")),
    "cleaner": (
        lambda t: clean(t, RULE),
        ("address parts", "ats", "urls", "images", "image openers", "brackets", "qa mark and blanks"),
    ),
    "markdown extractor": (lambda t: extract_markdown(t), ("brackets", "link openers", "link targets", "images")),
    "html extractor": (lambda t: extract_html(t), ("think", "unclosed attributes", "unclosed comments", "angles")),
    "keyword tokenizer": (tokenize, ("apostrophes", "address parts")),
    "token count": (count_tokens, ("apostrophes", "brackets")),
    "think split": (split_think, ("think",)),
    "json reply": (parse_json_reply, ("fences", "braces", "brackets", "action")),
    "react parse": (_parse_react, ("fences", "braces", "brackets", "action")),
    "prompt render": (lambda t: render(t + "{{name}}", {"name": "x"}), ("template refs", "braces")),
}


def extract_markdown(text: str) -> Any:
    from openify.plugins import build_registries

    return extract(build_registries().extractors, "a.md", text.encode())


def extract_html(text: str) -> Any:
    from openify.plugins import build_registries

    return extract(build_registries().extractors, "a.html", f"<html><body><p>{text}</p></body></html>".encode())


@pytest.mark.parametrize("scan", sorted(SCANS))
def test_text_scans_are_linear_on_1_mb_of_hostile_text(scan: str) -> None:
    fn, inputs = SCANS[scan]
    fn("中文 warm-up")  # jieba loads its dictionary on first use
    slow = {name: round(s, 2) for name in (*COMMON, *inputs) if (s := _superlinear(fn, HOSTILE[name]))}
    assert not slow, f"{scan} is worse than linear on: {slow}"


def test_the_old_scans_were_quadratic() -> None:
    # The bound above is meaningful: the regexes these scans replaced fail it on a tenth of the input.
    old = re.compile(r"<\|.*?\|>")
    small, large = "<|" * 4_000, "<|" * 16_000
    assert _timed(lambda t: old.sub("", t), large) > 8 * _timed(lambda t: old.sub("", t), small)
    assert _superlinear(clean_prompt, HOSTILE["special tokens"]) is None


@pytest.mark.parametrize("doc_form", ["text_model", "hierarchical_model", "qa_model"])
def test_splitters_are_linear_on_1_mb(registries: Registries, doc_form: str) -> None:
    rule: dict[str, Any] = {"mode": "automatic"}
    if doc_form == "hierarchical_model":
        rule = {
            "mode": "hierarchical",
            "rules": {"parent_mode": "paragraph", "segmentation": {"separator": "\n\n", "max_tokens": 500}},
        }
    for name in ("letters", "cjk", "qa mark and blanks", "blanks", "brackets"):
        started = time.perf_counter()
        try:
            split_document(registries.splitters, HOSTILE[name], rule, doc_form)
        except ExtractionError:
            assert doc_form == "qa_model"  # no pairs in it: refused, quickly
        assert time.perf_counter() - started < 5 * BOUND_S, (doc_form, name)


# --- files --------------------------------------------------------------------------------------------------
def _xlsx(rows: list[list[Any]], dimension: str | None = None, last_row: int | None = None) -> bytes:
    import openpyxl  # type: ignore[import-untyped]  # no stubs installed

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    if dimension is None and last_row is None:
        return buf.getvalue()
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                if dimension:
                    data = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="{dimension}"/>'.encode(), data)
                if last_row:
                    cell = f'<row r="{last_row}"><c r="A{last_row}" t="inlineStr"><is><t>end</t></is></c></row>'
                    data = data.replace(b"</sheetData>", cell.encode() + b"</sheetData>")
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_xlsx_with_a_huge_dimension_reads_only_its_rows(registries: Registries) -> None:
    data = _xlsx([["问题", "答案"], ["年假几天？", "十五天"]], dimension="A1:XFD1048576")
    assert len(data) < 6000
    started = time.perf_counter()
    out = extract(registries.extractors, "bomb.xlsx", data)
    assert out.text == "问题: 年假几天？; 答案: 十五天"
    assert extract_text(data, "xlsx") == "| 问题 | 答案 |\n| --- | --- |\n| 年假几天？ | 十五天 |\n"
    assert time.perf_counter() - started < 2


def test_xlsx_with_a_million_rows_hits_the_row_cap(registries: Registries) -> None:
    data = _xlsx([["q", "a"]], last_row=1_048_576)
    with pytest.raises(ExtractionError, match="more than 100,000 rows"):
        extract(registries.extractors, "rows.xlsx", data)
    with pytest.raises(DocumentTooLarge, match="more than 100,000 rows"):
        extract_text(data, "xlsx")


def test_csv_of_commas_is_not_padded_into_megabytes(registries: Registries) -> None:
    # One row of 2,000 commas among short rows: 6 KB that the node padded to a 12 MB table.
    data = ("," * 2000 + "\n" + "a\n" * 2000).encode()
    assert len(data) < 7000
    with pytest.raises(DocumentTooLarge, match="2,001 rows by 2,001 columns"):
        extract_text(data, "csv")
    out = extract(registries.extractors, "c.csv", data)  # the knowledge form is not padded: it stays small
    assert len(out.text) < 20_000


def test_zip_bomb_is_refused_before_inflating(registries: Registries) -> None:
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        dst.writestr("word/media/padding.bin", b"\0" * 3 * MB)
    data = out.getvalue()
    small = DocumentLimits(max_inflated_bytes=2 * MB)
    with pytest.raises(ExtractionError, match=r"inflates to .* over the limit of 2,000,000"):
        extract(registries.extractors, "bomb.docx", data, limits=small)
    with pytest.raises(DocumentTooLarge, match="inflates"):
        extract_text(data, "docx", limits=small)
    assert extract(registries.extractors, "bomb.docx", data).text == ""  # under the default cap it reads


def test_docx_grid_span_is_not_expanded(registries: Registries) -> None:
    import docx
    from docx.oxml.ns import qn

    d = docx.Document()
    table = d.add_table(rows=1, cols=1)
    table.cell(0, 0).text = "宽"
    tc_pr = table.rows[0]._tr.tc_lst[0].get_or_add_tcPr()
    span = tc_pr.makeelement(qn("w:gridSpan"), {qn("w:val"): "5000000"})
    tc_pr.append(span)
    buf = io.BytesIO()
    d.save(buf)
    started = time.perf_counter()
    assert "宽" in extract(registries.extractors, "wide.docx", buf.getvalue()).text
    assert "宽" in extract_text(buf.getvalue(), "docx")
    assert time.perf_counter() - started < 2


def test_deep_json_paths_hit_the_text_cap(registries: Registries) -> None:
    value: Any = [1] * 20_000
    for _ in range(400):
        value = [value]
    data = json.dumps(value).encode()  # 60 KB; every leaf repeats a 2.4 KB path
    with pytest.raises(ExtractionError, match="over the limit of 1,000,000 characters"):
        extract(registries.extractors, "deep.json", data, limits=DocumentLimits(max_text_chars=MB))
    with pytest.raises(DocumentTooLarge):
        extract_text(data, "json", limits=DocumentLimits(max_text_chars=MB))


def test_csv_rows_cap(registries: Registries) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([["q", "a"]] + [["x", "y"]] * 50)
    with pytest.raises(ExtractionError, match="more than 10 rows"):
        extract(registries.extractors, "r.csv", buf.getvalue().encode(), limits=DocumentLimits(max_rows=10))
