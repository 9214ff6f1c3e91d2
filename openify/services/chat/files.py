"""Files end users upload for chats: limits by extension, blob storage, and files named in requests."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openify.errors import FileAccessDenied, FileNotFound, FileTooLarge, InvalidParam, NotFound, UnsupportedFileType
from openify.providers.base import ImagePart
from openify.security.file_links import FileLinks
from openify.settings import UploadSettings
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import UploadFile
from openify.storage.tables.base import new_id, utcnow

IMAGE = ("jpg", "jpeg", "png", "webp", "gif", "svg")
VIDEO = ("mp4", "mov", "mpeg", "webm")
AUDIO = ("mp3", "m4a", "wav", "amr", "mpga")
DOCUMENT = (
    "txt",
    "markdown",
    "md",
    "mdx",
    "pdf",
    "html",
    "htm",
    "xlsx",
    "xls",
    "docx",
    "csv",
    "eml",
    "msg",
    "pptx",
    "ppt",
    "xml",
    "epub",
    "json",
)
_MB = 1024 * 1024


def file_type(extension: str) -> str:
    ext = extension.lower().lstrip(".")
    if ext in IMAGE:
        return "image"
    if ext in VIDEO:
        return "video"
    if ext in AUDIO:
        return "audio"
    if ext in DOCUMENT:
        return "document"
    return "custom"


def size_limit(extension: str, limits: UploadSettings) -> int:
    kind = file_type(extension)
    mb = {
        "image": limits.image_file_size_limit_mb,
        "video": limits.video_file_size_limit_mb,
        "audio": limits.audio_file_size_limit_mb,
    }.get(kind, limits.file_size_limit_mb)
    return mb * _MB


@dataclass(frozen=True, slots=True)
class RequestFiles:
    """Files of one request: what the message records and the images a vision model sees."""

    records: list[dict[str, Any]]
    images: list[ImagePart]
    upload_ids: list[str]


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, limits: UploadSettings, links: FileLinks) -> None:
        self._db, self._blobs, self._limits, self.links = db, blobs, limits, links

    def max_upload_bytes(self, filename: str) -> int:
        return size_limit(_extension(filename), self._limits)

    def upload(self, app_id: str, end_user_id: str, filename: str, content_type: str | None, data: bytes) -> UploadFile:
        """Store an upload; 413 over its category's limit, 415 when its type cannot be told."""
        name = filename.replace("\x00", "")[:200]  # PostgreSQL text cannot hold a NUL
        if "/" in name or "\\" in name:
            raise InvalidParam("Filename contains invalid characters.")
        ext = _extension(name)
        if len(data) > size_limit(ext, self._limits):
            raise FileTooLarge()
        mime = content_type if content_type and content_type != "application/octet-stream" else None
        mime = mime or mimetypes.guess_type(name)[0] or content_type
        if not mime:
            raise UnsupportedFileType()
        row = UploadFile(
            id=new_id(),
            app_id=app_id,
            end_user_id=end_user_id,
            name=name,
            size=len(data),
            extension=ext,
            mime_type=mime,
            blob_key="",
            used=False,
            created_at=utcnow(),
        )
        row.blob_key = f"uploads/{app_id}/{row.id}"
        self._blobs.put(row.blob_key, data)
        with self._db.session() as s:
            s.add(row)
        return row

    def preview(self, app_id: str, file_id: str) -> tuple[UploadFile, bytes]:
        """A file attached to a message of this app, with its bytes."""
        with self._db.session() as s:
            row = s.get(UploadFile, file_id)
        if row is None or not row.used:
            raise FileNotFound()
        if row.app_id != app_id:
            raise FileAccessDenied()
        try:
            return row, self._blobs.get(row.blob_key)
        except OSError:
            raise FileNotFound() from None

    def linked(self, file_id: str) -> tuple[UploadFile, bytes]:
        """An upload opened through a signed link, which the caller has checked: the link is the permission."""
        with self._db.session() as s:
            row = s.get(UploadFile, file_id)
        if row is None:
            raise NotFound("File not found or signature is invalid")
        try:
            return row, self._blobs.get(row.blob_key)
        except OSError:
            raise NotFound("File not found or signature is invalid") from None

    def url(self, record: Mapping[str, Any]) -> str | None:
        """A message file's `url`: a fresh signed link for an upload, else the URL it came with (Dify signs
        message files each time it serves them)."""
        upload_id = record.get("upload_file_id")
        if record.get("transfer_method") == "local_file" and upload_id:
            return self.links.upload_file(str(upload_id))
        return record.get("url")

    def resolve(
        self, app_id: str, end_user_id: str, files: Sequence[Mapping[str, Any]], *, vision: bool, detail: str
    ) -> RequestFiles:
        """Check the `files` of a request: local files must be this end user's uploads in this app."""
        records: list[dict[str, Any]] = []
        images: list[ImagePart] = []
        ids: list[str] = []
        uploads: dict[str, UploadFile] = {}
        wanted = [str(f.get("upload_file_id")) for f in files if f.get("transfer_method") == "local_file"]
        if wanted:
            with self._db.session() as s:
                uploads = {u.id: u for u in s.scalars(select(UploadFile).where(UploadFile.id.in_(wanted))).all()}
        for i, f in enumerate(files):
            method, kind = f.get("transfer_method"), str(f.get("type") or "custom")
            if method == "local_file":
                upload = uploads.get(str(f.get("upload_file_id")))
                if upload is None or upload.app_id != app_id or upload.end_user_id != end_user_id:
                    # Dify's file factory: "Invalid upload file" for an id of another tenant (here app) or user
                    raise InvalidParam(f"files[{i}]: Invalid upload file", params="files")
                ids.append(upload.id)
                records.append(
                    {
                        "id": new_id(),
                        "filename": upload.name,
                        "type": kind,
                        "url": None,
                        "mime_type": upload.mime_type,
                        "size": upload.size,
                        "transfer_method": "local_file",
                        "belongs_to": "user",
                        "upload_file_id": upload.id,
                        "extension": upload.extension,
                        "remote_url": None,
                    }
                )
                if vision and kind == "image":
                    data = base64.b64encode(self._blobs.get(upload.blob_key)).decode()
                    images.append(ImagePart(f"data:{upload.mime_type};base64,{data}", _detail(detail)))
            elif method == "remote_url":
                url = f.get("url") or f.get("remote_url")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise InvalidParam(f"files[{i}]: a remote_url file needs an http(s) url.", params="files")
                name = url.rsplit("/", 1)[-1].split("?", 1)[0]
                records.append(
                    {
                        "id": new_id(),
                        "filename": name,
                        "type": kind,
                        "url": url,
                        "mime_type": mimetypes.guess_type(name)[0],
                        "size": -1,
                        "transfer_method": "remote_url",
                        "belongs_to": "user",
                        "upload_file_id": None,
                        "extension": _extension(name),
                        "remote_url": url,
                    }
                )
                if vision and kind == "image":
                    images.append(ImagePart(url, _detail(detail)))
            else:
                raise InvalidParam(f"files[{i}]: transfer_method must be local_file or remote_url.", params="files")
        return RequestFiles(records, images, ids)

    def mark_used(self, s: Any, upload_ids: Sequence[str]) -> None:
        if upload_ids:
            from sqlalchemy import update

            s.execute(update(UploadFile).where(UploadFile.id.in_(list(upload_ids))).values(used=True))


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _detail(detail: str) -> Any:
    return detail if detail in ("low", "high", "auto") else "auto"
