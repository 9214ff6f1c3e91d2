"""Files in workflow runs: request file mappings become Dify File values, and the engine's FileStore reads them.

A `local_file` must be an upload of the same app and end user (the chat area's upload table); a `remote_url`
is fetched through the SSRF-guarded client when a node reads it. Files nodes produce are kept in the blob store.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select

from openify.engine.ports import HttpClient
from openify.engine.variables import FILE_MARK, is_file
from openify.errors import FileAccessDenied, InvalidParam, NotFound
from openify.security.file_links import FileLinks
from openify.services.chat.files import file_type
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import EndUser, UploadFile


def _file(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "dify_model_identity": FILE_MARK,
        "id": None,
        "tenant_id": "default",
        "type": "custom",
        "transfer_method": "local_file",
        "remote_url": None,
        "related_id": None,
        "filename": None,
        "extension": None,
        "mime_type": None,
        "size": -1,
        "url": None,
    }
    base.update(fields)
    return base


class WorkflowFiles:
    """Turns request files into File values; `for_app` is the engine's FileStore of one app."""

    def __init__(self, db: Database, blobs: BlobStore, http: HttpClient, links: FileLinks) -> None:
        self._db, self._blobs, self._http, self._links = db, blobs, http, links

    def resolve(self, app_id: str, end_user_id: str, files: Sequence[Any], field: str) -> list[dict[str, Any]]:
        """File values of request file mappings; unknown or foreign uploads are invalid_param."""
        wanted = [str(f.get("upload_file_id")) for f in files if isinstance(f, Mapping) and not is_file(f)]
        uploads: dict[str, UploadFile] = {}
        if wanted:
            with self._db.session() as s:
                uploads = {u.id: u for u in s.scalars(select(UploadFile).where(UploadFile.id.in_(wanted)))}
        out: list[dict[str, Any]] = []
        for i, f in enumerate(files):
            if not isinstance(f, Mapping):
                raise InvalidParam(f"{field}[{i}] must be a file mapping", params=field)
            method = f.get("transfer_method")
            if method == "local_file":
                u = uploads.get(str(f.get("upload_file_id")))
                if u is None or u.app_id != app_id or u.end_user_id != end_user_id:
                    # Dify's file factory: "Invalid upload file" for an id of another tenant (here app) or user
                    raise InvalidParam(f"{field}[{i}]: Invalid upload file", params=field)
                out.append(
                    _file(
                        id=u.id,
                        type=f.get("type") or file_type(u.extension),
                        related_id=u.id,
                        filename=u.name,
                        extension=f".{u.extension}" if u.extension else "",
                        mime_type=u.mime_type,
                        size=u.size,
                        url=self._links.upload_file(u.id),  # made now and stored with the run, as Dify's
                    )
                )
            elif method == "remote_url" and f.get("url"):
                url = str(f["url"])
                name = posixpath.basename(urlparse(url).path) or "file"
                ext = posixpath.splitext(name)[1]
                out.append(
                    _file(
                        id=str(uuid.uuid4()),
                        type=f.get("type") or file_type(ext),
                        transfer_method="remote_url",
                        remote_url=url,
                        url=url,
                        filename=name,
                        extension=ext,
                        mime_type=mimetypes.guess_type(name)[0],
                    )
                )
            else:
                raise InvalidParam(f"{field}[{i}]: transfer_method must be local_file or remote_url", params=field)
        return out

    def for_app(self, app_id: str) -> AppFiles:
        """The engine's FileStore for one app's runs: it reads only that app's files."""
        return AppFiles(self, app_id)

    async def read(self, file: Mapping[str, Any], app_id: str, user_id: str = "") -> bytes:
        """A File value's bytes, if the file belongs to `app_id` and an upload to the end user `user_id` (a
        session id). A File value in a run was made by the server, but it passes through inputs and nodes (a
        JSON input, code outputs, conversation variables) where it could be forged: the store, not the value,
        says whose a file is (Dify checks the upload's tenant and, for local files, the uploading user)."""
        method = file.get("transfer_method")
        if method == "remote_url":
            response = await self._http.request("GET", str(file.get("remote_url") or file.get("url")))
            return response.body
        file_id = str(file.get("related_id") or file.get("id"))
        if method == "tool_file":
            meta = await asyncio.to_thread(self._tool_meta, file_id)
            owner = meta.get("app_id")
            if owner is not None and owner != app_id:  # files made before owners were recorded have none
                raise FileAccessDenied("Invalid upload file")
            return await asyncio.to_thread(self._blobs.get, f"workflow-files/{file_id}")
        found = await asyncio.to_thread(self._upload, file_id)
        if found is None or found[0].app_id != app_id or (user_id and found[1] != user_id):
            raise FileAccessDenied("Invalid upload file")
        return await asyncio.to_thread(self._blobs.get, found[0].blob_key)

    def _upload(self, file_id: str) -> tuple[UploadFile, str | None] | None:
        """An upload and its end user's session id."""
        query = (
            select(UploadFile, EndUser.session_id)
            .outerjoin(EndUser, EndUser.id == UploadFile.end_user_id)
            .where(UploadFile.id == file_id)
        )
        with self._db.session() as s:
            row = s.execute(query).first()
        return None if row is None else (row[0], row[1])

    def _tool_meta(self, file_id: str) -> dict[str, Any]:
        try:
            meta = json.loads(self._blobs.get(f"workflow-files/{file_id}.meta"))
        except (OSError, ValueError):
            raise NotFound("file is not found") from None
        return meta if isinstance(meta, dict) else {}

    async def save(self, content: bytes, filename: str, mime_type: str, app_id: str | None = None) -> Mapping[str, Any]:
        file_id = str(uuid.uuid4())
        meta = json.dumps({"filename": filename, "mime_type": mime_type, "app_id": app_id}).encode()
        await asyncio.to_thread(self._blobs.put, f"workflow-files/{file_id}", content)
        await asyncio.to_thread(self._blobs.put, f"workflow-files/{file_id}.meta", meta)
        ext = posixpath.splitext(filename)[1]
        return _file(
            id=file_id,
            type=file_type(ext),
            transfer_method="tool_file",
            related_id=file_id,
            filename=filename,
            extension=ext,
            mime_type=mime_type,
            size=len(content),
            url=self._links.tool_file(file_id, ext),
        )

    def tool_file(self, file_id: str) -> tuple[bytes, str, str]:
        """A file a node made: (bytes, filename, mime type); NotFound when there is none."""
        try:
            content = self._blobs.get(f"workflow-files/{file_id}")
            meta = json.loads(self._blobs.get(f"workflow-files/{file_id}.meta"))
        except (OSError, ValueError):
            raise NotFound("file is not found") from None
        return content, str(meta.get("filename") or file_id), str(meta.get("mime_type") or "application/octet-stream")


class AppFiles:
    """The engine's FileStore (ports.FileStore) for one app's runs."""

    __slots__ = ("_app_id", "_files")

    def __init__(self, files: WorkflowFiles, app_id: str) -> None:
        self._files, self._app_id = files, app_id

    async def read(self, file: Mapping[str, Any], user_id: str = "") -> bytes:
        return await self._files.read(file, self._app_id, user_id)

    async def save(self, content: bytes, filename: str, mime_type: str) -> Mapping[str, Any]:
        return await self._files.save(content, filename, mime_type, self._app_id)
