"""Word files (.docx), through python-docx: paragraphs and tables in document order."""

from __future__ import annotations

import io
import zipfile
from typing import Any, ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.registry import Registries


def _table_markdown(table: Any) -> str:
    rows = [[cell.text.strip().replace("\n", " ").replace("|", "\\|") for cell in row.cells] for row in table.rows]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


class DocxExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("docx",)

    def extract(self, data: bytes, filename: str) -> Extracted:
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
        # Tables are read where they stand in the body, as Markdown, as Dify's WordExtractor does.
        for child in document.element.body.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                text = Paragraph(child, document).text.strip()
                if text:
                    blocks.append(text)
            elif tag == "tbl":
                table = _table_markdown(Table(child, document))
                if table:
                    blocks.append(table)
        return Extracted("\n\n".join(blocks))


def register(r: Registries) -> None:
    r.extractors.register("docx", DocxExtractor())
