"""Word files (.docx), through python-docx: paragraphs and tables in document order."""

from __future__ import annotations

import io
import zipfile
from typing import Any, ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits, TableBudget


def _table_markdown(table: Any, budget: TableBudget) -> str:
    from docx.table import _Cell

    rows = []
    # The stored <w:tc> cells, not python-docx's `row.cells`, which repeats a cell across its gridSpan: a
    # crafted span of a million columns would be a million cells per row before anything could count them.
    for tr in table._tbl.tr_lst:
        tcs = tr.tc_lst
        budget.row(len(tcs))
        rows.append([_Cell(tc, table).text.strip().replace("\n", " ").replace("|", "\\|") for tc in tcs])
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    budget.grid(len(rows), width)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


class DocxExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("docx",)

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        try:
            document = docx.Document(io.BytesIO(data))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise ExtractionError(f"{filename}: the Word file is damaged or not a .docx file ({e})") from e
        except Exception as e:  # python-docx raises its own PackageNotFoundError and lxml errors
            raise ExtractionError(f"{filename}: the Word file cannot be read ({type(e).__name__}: {e})") from e
        blocks: list[str] = []
        budget = TableBudget(limits, filename)
        chars = counted = 0
        # Tables are read where they stand in the body, as Markdown, as Dify's WordExtractor does.
        for child in document.element.body.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                text = Paragraph(child, document).text.strip()
                if text:
                    blocks.append(text)
            elif tag == "tbl":
                table = _table_markdown(Table(child, document), budget)
                if table:
                    blocks.append(table)
            if len(blocks) > counted:
                chars, counted = chars + len(blocks[-1]), len(blocks)
                limits.check_text_size(chars, filename)
        return Extracted("\n\n".join(blocks))


def register(r: Registries) -> None:
    r.extractors.register("docx", DocxExtractor())
