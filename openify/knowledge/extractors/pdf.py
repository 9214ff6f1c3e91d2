"""PDF files, through pypdf: text per page, pages separated by a blank line."""

from __future__ import annotations

import io
import logging
from typing import ClassVar

from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits


class PdfExtractor:
    extensions: ClassVar[tuple[str, ...]] = ("pdf",)

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:
        from pypdf import PdfReader
        from pypdf.errors import LimitReachedError, PyPdfError

        # pypdf logs every recoverable defect as a warning; a broken file is reported once, by us.
        logging.getLogger("pypdf").setLevel(logging.ERROR)
        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise ExtractionError(f"{filename}: not a PDF file (no %PDF header)")
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise ExtractionError(f"{filename}: the PDF is encrypted with a password")
            pages, chars = [], 0
            for page in reader.pages:
                pages.append(page.extract_text() or "")
                chars += len(pages[-1])
                limits.check_text_size(chars, filename)
        except ExtractionError:
            raise
        except LimitReachedError as e:  # pypdf's own caps on inflated streams (75 MB each by default)
            raise ExtractionError(f"{filename}: the PDF inflates past a safety limit ({e})") from e
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
            raise ExtractionError(f"{filename}: the PDF is damaged and cannot be read ({e})") from e
        return Extracted("\n\n".join(p.strip() for p in pages if p.strip()))


def register(r: Registries) -> None:
    r.extractors.register("pdf", PdfExtractor())
