from __future__ import annotations

import csv
import io
import json
import re

import pytest

from openify.errors import UnsupportedFileType
from openify.knowledge.extractors import ExtractionError, detect_extension, extract
from openify.registry import Registries
from tests.api.knowledge import pdf  # the one hand-written PDF builder of the tests


def _docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("季度报告", level=1)
    d.add_paragraph("Revenue grew in the third quarter.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "城市", "销量"
    table.cell(1, 0).text, table.cell(1, 1).text = "上海", "1200"
    d.add_paragraph("After the table.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _xlsx() -> bytes:
    import openpyxl  # type: ignore[import-untyped]  # no stubs installed

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["question", "answer"])
    sheet.append(["年假有几天？", "十五天"])
    sheet.append(["What is the refund window?", 30])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_txt_utf8_and_gb18030(registries: Registries) -> None:
    assert extract(registries.extractors, "a.txt", "你好 world".encode()).text == "你好 world"
    text = "北京是中国的首都，也是一座历史悠久的文化名城，每年吸引大量游客。" * 3
    assert extract(registries.extractors, "b.txt", text.encode("gb18030")).text == text


def test_markdown_keeps_text_drops_link_targets(registries: Registries) -> None:
    out = extract(registries.extractors, "r.md", b"# Title\n\nSee [the docs](https://x.io/a) now.").text
    assert out == "# Title\n\nSee the docs now."


def test_html_visible_text_only(registries: Registries) -> None:
    html = (
        b"<html><head><title>t</title><style>p{}</style></head><body><h1>Hi</h1><p>One</p>"
        b"<script>alert(1)</script><p>\xe4\xb8\xad\xe6\x96\x87</p></body></html>"
    )
    out = extract(registries.extractors, "p.html", html).text
    assert out.split("\n") == ["Hi", "One", "中文"]


def test_pdf_text_and_corruptpdf(registries: Registries) -> None:
    assert "Hello PDF world" in extract(registries.extractors, "a.pdf", pdf("Hello PDF world")).text
    with pytest.raises(ExtractionError, match=r"broken\.pdf"):
        extract(registries.extractors, "broken.pdf", pdf("Hello")[:60] + b"garbage" * 10)
    with pytest.raises(ExtractionError, match="not a PDF"):
        extract(registries.extractors, "fake.pdf", b"this is not a pdf")


def test_docx_paragraphs_and_tables_in_order(registries: Registries) -> None:
    text = extract(registries.extractors, "r.docx", _docx()).text
    assert text.index("季度报告") < text.index("Revenue") < text.index("| 城市 | 销量 |") < text.index("After")
    assert "| 上海 | 1200 |" in text


def test_corrupt_docx_and_xlsx(registries: Registries) -> None:
    for name in ("bad.docx", "bad.xlsx"):
        with pytest.raises(ExtractionError, match=re.escape(name)):
            extract(registries.extractors, name, b"PK\x03\x04 not really a zip")


def test_xlsx_rows_and_text(registries: Registries) -> None:
    out = extract(registries.extractors, "qa.xlsx", _xlsx())
    assert out.rows[0] == ("question", "answer")
    assert out.rows[2] == ("What is the refund window?", "30")
    assert "question: 年假有几天？; answer: 十五天" in out.text


def test_csv_rows_and_text(registries: Registries) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([["name", "city"], ["Ada", "London"], ["李雷", "北京"]])
    out = extract(registries.extractors, "people.csv", buf.getvalue().encode())
    assert out.text.splitlines() == ["name: Ada; city: London", "name: 李雷; city: 北京"]
    assert out.rows[2] == ("李雷", "北京")


def test_json_leaves_and_invalid_json(registries: Registries) -> None:
    data = {"product": {"name": "Openify", "tags": ["rag", "dify"]}, "ok": True}
    out = extract(registries.extractors, "p.json", json.dumps(data).encode()).text
    assert out.splitlines() == ["product.name: Openify", "product.tags[0]: rag", "product.tags[1]: dify", "ok: true"]
    with pytest.raises(ExtractionError, match=r"line 1, column \d+"):
        extract(registries.extractors, "bad.json", b'{"a": ')


def test_unsupported_type_is_415(registries: Registries) -> None:
    with pytest.raises(UnsupportedFileType) as e:
        extract(registries.extractors, "movie.mp4", b"\x00\x00\x00\x18ftypmp42")
    assert (e.value.status, e.value.code) == (415, "unsupported_file_type")


def test_detection_by_mime_and_bytes() -> None:
    assert detect_extension("REPORT.PDF") == "pdf"
    assert detect_extension("upload", "application/pdf; charset=binary") == "pdf"
    assert detect_extension("upload", None, pdf("x")) == "pdf"
    assert detect_extension("upload", None, _docx()) == "docx"
    with pytest.raises(UnsupportedFileType):
        detect_extension("upload", None, b"\x00\x01")
