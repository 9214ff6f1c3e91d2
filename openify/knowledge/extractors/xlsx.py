"""Excel files (.xlsx), through openpyxl: every sheet, one line of `header: value` pairs per row."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.knowledge.extractors.csv import rows_text
from openify.registry import Registries


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


class XlsxExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("xlsx", "xlsm")

    def extract(self, data: bytes, filename: str) -> Extracted:
        import openpyxl  # type: ignore[import-untyped]  # no stubs installed

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise ExtractionError(f"{filename}: the Excel file is damaged or not an .xlsx file ({e})") from e
        except Exception as e:  # openpyxl's InvalidFileException and lxml errors
            raise ExtractionError(f"{filename}: the Excel file cannot be read ({type(e).__name__}: {e})") from e
        texts: list[str] = []
        first_rows: list[tuple[str, ...]] = []
        try:
            for sheet in book.worksheets:
                rows = [tuple(_cell(v) for v in row) for row in sheet.iter_rows(values_only=True)]
                rows = [r for r in rows if any(c.strip() for c in r)]
                if not rows:
                    continue
                if not first_rows:
                    first_rows = rows
                text = rows_text(rows)
                texts.append(f"{sheet.title}\n{text}" if len(book.worksheets) > 1 else text)
        finally:
            book.close()
        return Extracted("\n\n".join(texts), tuple(first_rows))


def register(r: Registries) -> None:
    for ext in XlsxExtractor.extensions:
        r.extractors.register(ext, XlsxExtractor())
