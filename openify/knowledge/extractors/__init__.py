"""File extractors, one module per family, registered by extension in `r.extractors`.

`extract(r.extractors, filename, data)` is what the indexing job calls.
"""

from __future__ import annotations

from typing import Any

from openify.knowledge.extractors.base import (
    Extracted,
    ExtractionError,
    Extractor,
    UnsupportedDocumentType,
)
from openify.knowledge.extractors.detect import detect_extension, mime_type_of
from openify.registry import Registry
from openify.security.document_limits import DocumentLimits, DocumentTooLarge

__all__ = [
    "Extracted",
    "ExtractionError",
    "Extractor",
    "UnsupportedDocumentType",
    "detect_extension",
    "extract",
    "mime_type_of",
    "supported_extensions",
]


def supported_extensions(extractors: Registry[Any]) -> list[str]:
    """Extensions with an extractor, for the upload checks of the API."""
    return sorted(extractors.names())


def extract(
    extractors: Registry[Any],
    filename: str,
    data: bytes,
    mime_type: str | None = None,
    limits: DocumentLimits | None = None,
) -> Extracted:
    """Read an uploaded file. Raises UnsupportedDocumentType (415) or ExtractionError (document `error` status),
    also when the file passes a cap of `limits` (the document then says which)."""
    limits = limits or DocumentLimits()
    ext = detect_extension(filename, mime_type, data)
    extractor = extractors.find(ext)
    if extractor is None:
        raise UnsupportedDocumentType(f"files of type .{ext} are not supported")
    try:
        if data.startswith(b"PK\x03\x04"):  # docx, xlsx: zips, whatever the extension says
            limits.check_zip(data, filename)
        result: Extracted = extractor.extract(data, filename, limits)
        limits.check_text(result.text, filename)
    except (ExtractionError, UnsupportedDocumentType):
        raise
    except DocumentTooLarge as e:
        raise ExtractionError(e.detail) from e
    except MemoryError as e:
        raise ExtractionError(f"{filename}: the file is too large to read") from e
    except Exception as e:  # a parser bug on a hostile file must become a document error, never a crash
        raise ExtractionError(f"{filename}: the file cannot be read ({type(e).__name__}: {e})") from e
    return result
