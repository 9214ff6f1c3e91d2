"""The extractor contract: file bytes in, plain text (and table rows for tabular files) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from openify.errors import OpenifyError, UnsupportedFileType
from openify.security.document_limits import DocumentLimits


class ExtractionError(OpenifyError):
    """A file of a supported type could not be read (corrupt, encrypted, wrong encoding).

    The indexing job stores `detail` as the document's `error` and sets its status to `error`;
    it never reaches a client as an HTTP error, hence the 400 only as a fallback.
    """

    code, status, message = "invalid_param", 400, "The file could not be read."


class UnsupportedDocumentType(UnsupportedFileType):
    """An upload's extension or MIME type has no extractor (the API answers 415 unsupported_file_type)."""


@dataclass(frozen=True, slots=True)
class Extracted:
    """What an extractor read. `rows` is set for tabular files (csv, xlsx): header row first."""

    text: str
    rows: Sequence[Sequence[str]] = field(default_factory=tuple)


class Extractor(Protocol):
    """Reads one family of file types."""

    extensions: ClassVar[tuple[str, ...]]

    def extract(self, data: bytes, filename: str, limits: DocumentLimits) -> Extracted:
        """Return the file's text; raise ExtractionError when the bytes cannot be read, DocumentTooLarge past a cap.

        Runs in a worker thread: it may block, but must count rows, cells and text against `limits` as it goes.
        """
        ...


def decode_text(data: bytes, filename: str) -> str:
    """Bytes of a text file as str: UTF-8 (with or without BOM), else the detected encoding (GB18030 is common)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise ExtractionError(f"{filename}: the text encoding could not be detected")
    return str(best)
