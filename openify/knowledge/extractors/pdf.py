"""PDF files, through pypdf: text per page, pages separated by a blank line."""

from __future__ import annotations

import io
import logging
from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.registry import Registries


class PdfExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("pdf",)

    def extract(self, data: bytes, filename: str) -> Extracted:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        # pypdf logs every recoverable defect as a warning; a broken file is reported once, by us.
        logging.getLogger("pypdf").setLevel(logging.ERROR)
        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise ExtractionError(f"{filename}: not a PDF file (no %PDF header)")
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise ExtractionError(f"{filename}: the PDF is encrypted with a password")
            pages = [page.extract_text() or "" for page in reader.pages]
        except ExtractionError:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
            raise ExtractionError(f"{filename}: the PDF is damaged and cannot be read ({e})") from e
        return Extracted("\n\n".join(p.strip() for p in pages if p.strip()))


def register(r: Registries) -> None:
    r.extractors.register("pdf", PdfExtractor())
