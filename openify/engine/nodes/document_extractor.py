"""`document-extractor`: text out of files (txt, md, html, json, yaml, csv, pdf, docx, xlsx)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector
from openify.engine.variables import is_file


def _table(rows: list[list[Any]]) -> str:
    rows = [["" if c is None else str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows if r]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    head = "| " + " | ".join(rows[0]) + " |"
    sep = "| " + " | ".join("---" for _ in range(width)) + " |"
    return "\n".join([head, sep, *("| " + " | ".join(r) + " |" for r in rows[1:])]) + "\n"


def _decode(data: bytes) -> str:
    for enc in ("utf-8", "gb18030", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


def extract_text(data: bytes, extension: str, mime_type: str = "") -> str:
    """Text of one file, chosen by extension (then MIME type); tables become markdown."""
    ext = extension.lower().lstrip(".")
    if not ext and mime_type:
        ext = {"application/pdf": "pdf", "text/html": "html", "application/json": "json", "text/csv": "csv"}.get(
            mime_type, "txt" if mime_type.startswith("text/") else ""
        )
    if ext in ("txt", "md", "markdown", "mdx", "text", "vtt", "properties", "log", "xml", "yaml", "yml", ""):
        return _decode(data)
    if ext == "json":
        return json.dumps(json.loads(_decode(data)), ensure_ascii=False, indent=2)
    if ext in ("html", "htm"):
        from bs4 import BeautifulSoup

        return BeautifulSoup(data, "html.parser").get_text()
    if ext == "csv":
        return _table(list(csv.reader(io.StringIO(_decode(data)))))
    if ext == "pdf":
        from pypdf import PdfReader

        return "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    if ext == "docx":
        import docx

        doc = docx.Document(io.BytesIO(data))
        parts = [p.text for p in doc.paragraphs]
        for t in doc.tables:
            parts.append(_table([[c.text for c in row.cells] for row in t.rows]))
        return "\n".join(parts)
    if ext in ("xlsx", "xls"):
        from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs installed

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        out = []
        for ws in wb.worksheets:
            out.append(_table([list(r) for r in ws.iter_rows(values_only=True)]))
        return "\n".join(out)
    raise NodeError(f"Unsupported file type: {extension or mime_type}", "UnsupportedFileTypeError")


class DocumentExtractorNode(Node):
    type = "document-extractor"

    async def _one(self, ctx: NodeContext, f: Mapping[str, Any]) -> str:
        data = await ctx.require("files").read(f, ctx.run.system.user_id)
        try:
            return extract_text(data, str(f.get("extension") or ""), str(f.get("mime_type") or ""))
        except NodeError:
            raise
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
