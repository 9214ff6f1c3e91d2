"""CSV files: one line of `header: value` pairs per row (as Dify's CSVExtractor), and the rows for QA."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError, decode_text
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits, DocumentTooLarge, TableBudget


def rows_text(rows: Sequence[Sequence[str]], max_chars: int | None = None, filename: str = "") -> str:
    """Rows (header first) as text: `header: value; header: value`, one row per line, at most `max_chars`
    (each value repeats its header, so a long header times many rows is counted as it grows)."""
    if not rows:
        return ""
    header = [h.strip() for h in rows[0]]
    lines = []
    chars = 0
    for row in rows[1:]:
        pairs = [
            f"{header[i] if i < len(header) and header[i] else f'column{i + 1}'}: {v.strip()}"
            for i, v in enumerate(row)
            if v.strip()
        ]
        if pairs:
            lines.append("; ".join(pairs))
            chars += len(lines[-1]) + 1
            if max_chars is not None and chars > max_chars:
                raise DocumentTooLarge(f"{filename}: the extracted text is over the limit of {max_chars:,} characters")
    return "\n".join(lines)


class CsvExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("csv", "tsv")

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:
        text = decode_text(data, filename)
        delimiter = "\t" if filename.lower().endswith(".tsv") else ","
        try:
            if delimiter == ",":
                try:
                    delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
                except csv.Error:
                    delimiter = ","
            budget = TableBudget(limits, filename)
            rows = []
            for row in csv.reader(io.StringIO(text), delimiter=delimiter):
                budget.row(len(row))
                if any(c.strip() for c in row):
                    rows.append(row)
        except csv.Error as e:
            raise ExtractionError(f"{filename}: the CSV file cannot be parsed ({e})") from e
        return Extracted(rows_text(rows, limits.max_text_chars, filename), tuple(tuple(r) for r in rows))


def register(r: Registries) -> None:
    for ext in CsvExtractor.extensions:
        r.extractors.register(ext, CsvExtractor())
