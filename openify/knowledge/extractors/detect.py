"""File type detection: the extension first, then the MIME type, then the first bytes."""

from __future__ import annotations

import mimetypes
import zipfile
from io import BytesIO
from pathlib import PurePosixPath

from openify.knowledge.extractors.base import UnsupportedDocumentType

_MIME_EXTENSIONS = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
}


def _sniff(data: bytes) -> str | None:
    head = data[:2048].lstrip()
    if head.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return None
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        return None
    low = head[:256].lower()
    if low.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head[:1] in (b"{", b"["):
        return "json"
    return None


def detect_extension(filename: str, mime_type: str | None = None, data: bytes | None = None) -> str:
    """The lower-case extension (no dot) naming the extractor for this upload; raises UnsupportedDocumentType."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower().lstrip(".")
    if suffix:
        return suffix
    if mime_type:
        base = mime_type.split(";", 1)[0].strip().lower()
        ext = _MIME_EXTENSIONS.get(base) or (mimetypes.guess_extension(base) or "").lstrip(".")
        if ext:
            return ext
    if data is not None:
        sniffed = _sniff(data)
        if sniffed:
            return sniffed
    raise UnsupportedDocumentType(f"cannot tell the type of {filename!r}")


def mime_type_of(extension: str) -> str:
    """The MIME type stored for an upload of this extension."""
    for mime, ext in _MIME_EXTENSIONS.items():
        if ext == extension:
            return mime
    return mimetypes.types_map.get(f".{extension}", "application/octet-stream")
