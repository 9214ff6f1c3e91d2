"""CSV files: one line of `header: value` pairs per row (as Dify's CSVExtractor), and the rows for QA."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError, decode_text
from openify.registry import Registries


def rows_text(rows: Sequence[Sequence[str]]) -> str:
    """Rows (header first) as text: `header: value; header: value`, one row per line."""
    if not rows:
        return ""
    header = [h.strip() for h in rows[0]]
    lines = []
    for row in rows[1:]:
        pairs = [
            f"{header[i] if i < len(header) and header[i] else f'column{i + 1}'}: {v.strip()}"
            for i, v in enumerate(row)
            if v.strip()
        ]
        if pairs:
            lines.append("; ".join(pairs))
    return "\n".join(lines)


class CsvExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("csv", "tsv")

    def extract(self, data: bytes, filename: str) -> Extracted:
        text = decode_text(data, filename)
        delimiter = "\t" if filename.lower().endswith(".tsv") else ","
        try:
            if delimiter == ",":
                try:
                    delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
                except csv.Error:
                    delimiter = ","
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in row)]
        except csv.Error as e:
            raise ExtractionError(f"{filename}: the CSV file cannot be parsed ({e})") from e
        return Extracted(rows_text(rows), tuple(tuple(r) for r in rows))


def register(r: Registries) -> None:
    for ext in CsvExtractor.extensions:
        r.extractors.register(ext, CsvExtractor())
