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


def extract(extractors: Registry[Any], filename: str, data: bytes, mime_type: str | None = None) -> Extracted:
    """Read an uploaded file. Raises UnsupportedDocumentType (415) or ExtractionError (document `error` status)."""
    ext = detect_extension(filename, mime_type, data)
    extractor = extractors.find(ext)
    if extractor is None:
        raise UnsupportedDocumentType(f"files of type .{ext} are not supported")
    try:
        result: Extracted = extractor.extract(data, filename)
    except (ExtractionError, UnsupportedDocumentType):
        raise
    except Exception as e:  # a parser bug on a hostile file must become a document error, never a crash
        raise ExtractionError(f"{filename}: the file cannot be read ({type(e).__name__}: {e})") from e
    return result
