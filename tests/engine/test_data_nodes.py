"""Nodes that shape data: if-else operators, list operator, document extractor, template sandbox, code checks."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import docx
import openpyxl  # type: ignore[import-untyped]  # no stubs installed
import pytest
from pypdf import PdfWriter

from openify.engine.conditions import compare
from openify.engine.nodes.document_extractor import extract_text
from openify.engine.ports import Ports
from tests.engine.conftest import SANDBOX, DirFiles, file_value, load_dsl, run_dsl


@pytest.mark.parametrize(
    ("actual", "op", "expected", "result"),
    [
        ("hello", "contains", "ell", True),
        ("", "contains", "", False),
        (None, "not contains", "x", True),
        ("hello", "not contains", "z", True),
        ("hello", "start with", "he", True),
        ("hello", "end with", "lo", True),
        ("a", "is", "a", True),
        ("a", "is not", "a", False),
        (None, "is", "", False),
        (None, "is not", "", False),
        (True, "is", "true", True),
        (False, "is not", "true", True),
        ("", "empty", None, True),
        (0, "empty", None, True),
        ([], "empty", None, True),
        ("x", "not empty", None, True),
        ("b", "in", ["a", "b"], True),
        ("c", "not in", ["a", "b"], True),
        (["a", "b"], "all of", ["a"], True),
        (["a"], "all of", ["a", "z"], False),
        ([1, 2], "contains", "2", True),
        (5, "=", "5", True),
        (5, "≠", "5", False),
        (5, ">", "4", True),
        (5, "<", "4", False),
        (5, "≥", "5", True),
        (5, "≤", "4.5", False),
        (2.5, "=", "2.5", True),
        (None, ">", "1", False),
        (None, "null", None, True),
        (1, "not null", None, True),
        (None, "exists", None, False),
        ({}, "not exists", None, False),
    ],
)
def test_comparison_operators(actual: Any, op: str, expected: Any, result: bool) -> None:
    assert compare(actual, op, expected) is result


def _write_files(root: Path) -> list[dict[str, Any]]:
    (root / "a.txt").write_text("alpha text")
    buf = io.StringIO()
    csv.writer(buf).writerows([["h1", "h2"], ["1", "2"]])
    (root / "b.csv").write_text(buf.getvalue())
    (root / "c.html").write_text("<html><body><p>gamma</p></body></html>")
    (root / "pic.png").write_bytes(b"\x89PNG")
    return [
        file_value("a.txt"),
        file_value("b.csv"),
        file_value("c.html", mime_type="text/html"),
        file_value("pic.png", kind="image", mime_type="image/png"),
    ]


async def test_files_branch_filter_order_limit_and_extract(tmp_path: Path) -> None:
    docs = _write_files(tmp_path)
    out = await run_dsl(load_dsl("files.yml"), {"docs": docs}, ports=Ports(files=DirFiles(tmp_path)))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs["first"] == "c.html"  # ordered by name, descending
    assert [t.strip() for t in out.outputs["texts"]] == ["gamma", "| h1 | h2 |\n| --- | --- |\n| 1 | 2 |"]
    assert out.outputs["none"] is None


async def test_files_without_documents_take_else(tmp_path: Path) -> None:
    docs = [_write_files(tmp_path)[3]]
    out = await run_dsl(load_dsl("files.yml"), {"docs": docs}, ports=Ports(files=DirFiles(tmp_path)))
    assert out.outputs == {"texts": None, "first": None, "none": "no documents"}


def test_document_formats(tmp_path: Path) -> None:
    d = docx.Document()
    d.add_paragraph("word text")
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text, t.rows[0].cells[1].text = "x", "y"
    buf = io.BytesIO()
    d.save(buf)
    assert extract_text(buf.getvalue(), ".docx").startswith("word text\n| x | y |")
    wb = openpyxl.Workbook()
    wb.active.append(["k", "v"])
    wb.active.append(["a", 1])
    buf = io.BytesIO()
    wb.save(buf)
    assert extract_text(buf.getvalue(), "xlsx").strip() == "| k | v |\n| --- | --- |\n| a | 1 |"
    w = PdfWriter()
    w.add_blank_page(100, 100)
    buf = io.BytesIO()
    w.write(buf)
    assert extract_text(buf.getvalue(), ".pdf") == ""
    assert extract_text(b'{"a":1}', ".json") == '{\n  "a": 1\n}'
    assert extract_text("# 标题".encode(), ".md") == "# 标题"


def _one_node(data: dict[str, Any], outputs: list[tuple[str, list[str]]]) -> dict[str, Any]:
    return {
        "app": {"mode": "workflow"},
        "workflow": {
            "graph": {
                "nodes": [
                    {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
                    {"id": "n", "data": {"title": "N", **data}},
                    {
                        "id": "e",
                        "data": {
                            "type": "end",
                            "title": "E",
                            "outputs": [{"variable": k, "value_selector": v} for k, v in outputs],
                        },
                    },
                ],
                "edges": [{"source": "s", "target": "n"}, {"source": "n", "target": "e"}],
            }
        },
    }


async def test_template_transform_is_sandboxed() -> None:
    dsl = _one_node(
        {"type": "template-transform", "variables": [], "template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
        [("o", ["n", "output"])],
    )
    out = await run_dsl(dsl)
    assert out.finished.status == "failed"
    assert "unsafe" in (out.finished.error or "")


async def test_code_outputs_are_checked_against_declared_types() -> None:
    code = "def main() -> dict:\n    return {'n': True, 's': 'x', 'extra': 1, 'arr': [1, 2]}\n"
    data = {
        "type": "code",
        "code_language": "python3",
        "code": code,
        "variables": [],
        "outputs": {"n": {"type": "number"}, "s": {"type": "string"}, "arr": {"type": "array[number]"}},
    }
    out = await run_dsl(_one_node(data, [("n", ["n", "n"]), ("s", ["n", "s"])]))
    assert out.outputs == {"n": 1, "s": "x"}
    assert out.nodes["n"].outputs == {"n": 1, "s": "x", "arr": [1, 2]}  # undeclared keys dropped
    data["outputs"] = {"s": {"type": "number"}}
    out = await run_dsl(_one_node(data, []))
    assert out.finished.error == "Output s must be a number, got str instead."
    data["outputs"] = {"missing": {"type": "string"}}
    out = await run_dsl(_one_node(data, []))
    assert out.finished.error == "Output missing is missing."


async def test_code_javascript_and_sandbox_errors() -> None:
    data = {
        "type": "code",
        "code_language": "javascript",
        "code": "function main({a}) { return {r: a + 1} }",
        "variables": [{"variable": "a", "value_selector": ["sys", "timestamp"]}],
        "outputs": {"r": {"type": "number"}},
    }
    out = await run_dsl(_one_node(data, [("r", ["n", "r"])]), ports=Ports(sandbox=SANDBOX))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs["r"] == out.nodes["n"].inputs["a"] + 1
    bad = _one_node(
        {
            "type": "code",
            "code_language": "python3",
            "code": "def main():\n    import socket\n"
            "    socket.create_connection(('1.1.1.1', 80), timeout=2)\n    return {}\n",
            "variables": [],
            "outputs": {},
        },
        [],
    )
    out = await run_dsl(bad)
    assert out.finished.status == "failed" and out.nodes["n"].status == "failed"


async def test_code_without_sandbox_port_fails_clearly() -> None:
    data = {
        "type": "code",
        "code_language": "python3",
        "code": "def main():\n    return {}\n",
        "variables": [],
        "outputs": {},
    }
    out = await run_dsl(_one_node(data, []), ports=Ports())
    assert out.finished.error == "This server has no sandbox configured for workflow nodes."


async def test_list_operator_numbers_extract_and_empty() -> None:
    data = {
        "type": "list-operator",
        "variable": ["env", "nums"],
        "filter_by": {"enabled": True, "conditions": [{"key": "", "comparison_operator": ">", "value": "2"}]},
        "extract_by": {"enabled": True, "serial": "2"},
        "order_by": {"enabled": False},
        "limit": {"enabled": False},
    }
    dsl = _one_node(data, [("r", ["n", "result"]), ("f", ["n", "first_record"])])
    dsl["workflow"]["environment_variables"] = [{"name": "nums", "value_type": "string", "value": [5, 1, 3, 9]}]
    out = await run_dsl(dsl)
    assert out.outputs == {"r": [3], "f": 3}
