"""Caps on what reading one uploaded document may cost: inflated bytes, rows, cells and text.

A 1.5 KB xlsx can declare a million rows and a 6 KB CSV of commas becomes 12 MB of table, so every parser
(knowledge extractors and the workflow `document-extractor` node) counts as it goes and stops at a cap with
DocumentTooLarge instead of growing without bound. docx and xlsx are zip files: their declared sizes are
summed before anything is inflated (Python's zipfile never inflates an entry past its declared size).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from openify.errors import OpenifyError
from openify.settings import ExtractionSettings


class DocumentTooLarge(OpenifyError):
    """A document would exceed an extraction cap (inflated size, rows, cells or text); `detail` names which."""

    code, status, message = "file_too_large", 413, "File size exceeded."


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_inflated_bytes: int = 100 * 1024 * 1024
    max_rows: int = 100_000
    max_cells: int = 2_000_000
    max_text_chars: int = 20_000_000

    @classmethod
    def of(cls, settings: ExtractionSettings) -> DocumentLimits:
        inflated = settings.max_inflated_mb * 1024 * 1024
        return cls(inflated, settings.max_rows, settings.max_cells, settings.max_text_chars)

    def check_zip(self, data: bytes, filename: str) -> None:
        """Refuse a zip (docx, xlsx) whose entries inflate past the cap; a damaged zip is left to its parser."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                inflated = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return
        if inflated > self.max_inflated_bytes:
            raise DocumentTooLarge(
                f"{filename}: the file inflates to {inflated:,} bytes, over the limit of {self.max_inflated_bytes:,}"
            )

    def check_text(self, text: str, filename: str) -> str:
        self.check_text_size(len(text), filename)
        return text

    def check_text_size(self, chars: int, filename: str) -> None:
        """Raise DocumentTooLarge once `chars` characters of text are over the cap."""
        if chars > self.max_text_chars:
            raise DocumentTooLarge(
                f"{filename}: the extracted text is over the limit of {self.max_text_chars:,} characters"
            )


class TableBudget:
    """Counts the rows and cells one document has yielded; raises DocumentTooLarge past a cap."""

    __slots__ = ("cells", "filename", "limits", "rows")

    def __init__(self, limits: DocumentLimits, filename: str) -> None:
        self.limits, self.filename, self.rows, self.cells = limits, filename, 0, 0

    def row(self, width: int) -> None:
        """Count one row of `width` cells (empty rows count too: a sheet can declare a million of them)."""
        self.rows += 1
        self.cells += width
        if self.rows > self.limits.max_rows:
            raise DocumentTooLarge(f"{self.filename}: the table has more than {self.limits.max_rows:,} rows")
        if self.cells > self.limits.max_cells:
            raise DocumentTooLarge(f"{self.filename}: the table has more than {self.limits.max_cells:,} cells")

    def grid(self, rows: int, width: int) -> None:
        """Check a table about to be padded to `rows` x `width`: one wide row among many short ones
        (a 6 KB CSV of 2,000 commas) would otherwise pad every row to its width."""
        if rows * width > self.limits.max_cells:
            raise DocumentTooLarge(
                f"{self.filename}: the table of {rows:,} rows by {width:,} columns has more than "
                f"{self.limits.max_cells:,} cells"
            )
