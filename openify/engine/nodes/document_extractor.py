"""`document-extractor`: text out of files (txt, md, html, json, yaml, csv, pdf, docx, xlsx).

Parsing runs in a worker thread (a PDF or a workbook can take seconds of CPU) and counts rows, cells and
text against the run's DocumentLimits, so a small crafted file fails the node instead of the server.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector
from openify.engine.variables import is_file
from openify.security.document_limits import DocumentLimits, DocumentTooLarge, TableBudget


def _table(rows: list[list[Any]], budget: TableBudget) -> str:
    rows = [r for r in rows if r]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    budget.grid(len(rows), width)  # before padding: one wide row would pad every other row to its width
    rows = [["" if c is None else str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    rows = [r + [""] * (width - len(r)) for r in rows]
    head = "| " + " | ".join(rows[0]) + " |"
    sep = "| " + " | ".join("---" for _ in range(width)) + " |"
    return "\n".join([head, sep, *("| " + " | ".join(r) + " |" for r in rows[1:])]) + "\n"


def _counted(rows: Any, budget: TableBudget) -> list[list[Any]]:
    out = []
    for row in rows:
        budget.row(len(row))
        out.append(list(row))
    return out


def _json_text(value: Any, limits: DocumentLimits, name: str) -> str:
    # Indentation grows with depth, so a deeply nested file can print far larger than it is: count as it prints.
    parts, chars = [], 0
    for part in json.JSONEncoder(ensure_ascii=False, indent=2).iterencode(value):
        parts.append(part)
        chars += len(part)
        limits.check_text_size(chars, name)
    return "".join(parts)


def _docx_text(data: bytes, budget: TableBudget) -> str:
    import docx
    from docx.table import _Cell

    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        # The stored cells, not `row.cells`, which repeats a cell across a (crafted, huge) gridSpan.
        rows = []
        for tr in t._tbl.tr_lst:
            budget.row(len(tr.tc_lst))
            rows.append([_Cell(tc, t).text for tc in tr.tc_lst])
        parts.append(_table(rows, budget))
    return "\n".join(parts)


def _pdf_text(data: bytes, limits: DocumentLimits, name: str) -> str:
    from pypdf import PdfReader

    pages, chars = [], 0
    for page in PdfReader(io.BytesIO(data)).pages:  # pypdf caps each inflated stream itself (LimitReachedError)
        pages.append(page.extract_text() or "")
        chars += len(pages[-1])
        limits.check_text_size(chars, name)
    return "".join(pages)


def _xlsx_text(data: bytes, budget: TableBudget) -> str:
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs installed

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        out = []
        for ws in wb.worksheets:
            ws.reset_dimensions()  # rows as stored, not padded to a (crafted) `<dimension>` of a million rows
            out.append(_table(_counted(ws.iter_rows(values_only=True), budget), budget))
        return "\n".join(out)
    finally:
        wb.close()


def _decode(data: bytes) -> str:
    for enc in ("utf-8", "gb18030", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


def extract_text(data: bytes, extension: str, mime_type: str = "", limits: DocumentLimits | None = None) -> str:
    """Text of one file, chosen by extension (then MIME type); tables become markdown.

    Blocking: call it in a thread. Raises DocumentTooLarge past a cap of `limits`.
    """
    limits = limits or DocumentLimits()
    ext = extension.lower().lstrip(".")
    if not ext and mime_type:
        ext = {"application/pdf": "pdf", "text/html": "html", "application/json": "json", "text/csv": "csv"}.get(
            mime_type, "txt" if mime_type.startswith("text/") else ""
        )
    name = f"the .{ext} file" if ext else "the file"
    budget = TableBudget(limits, name)
    if ext in ("txt", "md", "markdown", "mdx", "text", "vtt", "properties", "log", "xml", "yaml", "yml", ""):
        return limits.check_text(_decode(data), name)
    if ext == "json":
        return _json_text(json.loads(_decode(data)), limits, name)
    if ext in ("html", "htm"):
        from bs4 import BeautifulSoup

        # lxml: html.parser is quadratic on unclosed tags (1 MB of `<a href='` ran for minutes)
        return limits.check_text(BeautifulSoup(data, "lxml").get_text(), name)
    if ext == "csv":
        return limits.check_text(_table(_counted(csv.reader(io.StringIO(_decode(data))), budget), budget), name)
    if ext == "pdf":
        return _pdf_text(data, limits, name)
    if ext in ("docx", "xlsx", "xls"):
        limits.check_zip(data, name)  # zips: refuse what inflates past the cap before parsing
        text = _docx_text(data, budget) if ext == "docx" else _xlsx_text(data, budget)
        return limits.check_text(text, name)
    raise NodeError(f"Unsupported file type: {extension or mime_type}", "UnsupportedFileTypeError")


class DocumentExtractorNode(Node):
    type = "document-extractor"

    async def _one(self, ctx: NodeContext, f: Mapping[str, Any]) -> str:
        data = await ctx.require("files").read(f, ctx.run.system.user_id)
        ext, mime = str(f.get("extension") or ""), str(f.get("mime_type") or "")
        try:
            return await asyncio.to_thread(extract_text, data, ext, mime, ctx.ports.document_limits)
        except NodeError:
            raise
        except DocumentTooLarge as exc:
            raise NodeError(
                f"Failed to extract text from {f.get('filename')}: {exc.detail}", "TextExtractionError"
            ) from exc
        except MemoryError as exc:
            raise NodeError(
                f"Failed to extract text from {f.get('filename')}: too large", "TextExtractionError"
            ) from exc
        except Exception as exc:
            raise NodeError(f"Failed to extract text from {f.get('filename')}: {exc}", "TextExtractionError") from exc

    async def run(self, ctx: NodeContext) -> NodeResult:
        sel = selector(self.data.get("variable_selector"))
        value = ctx.pool.get(sel)
        if value is None:
            raise NodeError(f"File variable not found for selector: {sel}", "DocumentExtractorError")
        if isinstance(value, list):
            texts = [await self._one(ctx, f) for f in value if is_file(f) or isinstance(f, Mapping)]
            return NodeResult(outputs={"text": texts}, inputs={"variable_selector": sel})
        if not isinstance(value, Mapping):
            raise NodeError(f"Variable {'.'.join(sel)} is not a file.", "DocumentExtractorError")
        return NodeResult(outputs={"text": await self._one(ctx, value)}, inputs={"variable_selector": sel})


def register(r: Any) -> None:
    r.nodes.register(DocumentExtractorNode.type, DocumentExtractorNode)
