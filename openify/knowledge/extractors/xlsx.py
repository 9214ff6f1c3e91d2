"""Excel files (.xlsx), through openpyxl: every sheet, one line of `header: value` pairs per row."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from typing import Any, ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.knowledge.extractors.csv import rows_text
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits, TableBudget


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def iter_sheet(sheet: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of a read-only sheet as stored, not padded to its `<dimension>`: a 1.5 KB file can declare
    `A1:XFD1048576`, which openpyxl would otherwise fill with a million rows of 16,384 empty cells."""
    sheet.reset_dimensions()
    yield from sheet.iter_rows(values_only=True)


class XlsxExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("xlsx", "xlsm")

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:
        import openpyxl  # type: ignore[import-untyped]  # no stubs installed

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise ExtractionError(f"{filename}: the Excel file is damaged or not an .xlsx file ({e})") from e
        except Exception as e:  # openpyxl's InvalidFileException and lxml errors
            raise ExtractionError(f"{filename}: the Excel file cannot be read ({type(e).__name__}: {e})") from e
        texts: list[str] = []
        first_rows: list[tuple[str, ...]] = []
        budget = TableBudget(limits, filename)
        chars = 0
        try:
            for sheet in book.worksheets:
                rows = []
                for row in iter_sheet(sheet):
                    budget.row(len(row))
                    cells = tuple(_cell(v) for v in row)
                    if any(c.strip() for c in cells):
                        rows.append(cells)
                if not rows:
                    continue
                if not first_rows:
                    first_rows = rows
                text = rows_text(rows, limits.max_text_chars - chars, filename)
                chars += len(text)
                texts.append(f"{sheet.title}\n{text}" if len(book.worksheets) > 1 else text)
        finally:
            book.close()
        return Extracted("\n\n".join(texts), tuple(first_rows))


def register(r: Registries) -> None:
    for ext in XlsxExtractor.extensions:
        r.extractors.register(ext, XlsxExtractor())
