"""POST /files/upload (multipart) and GET /files/{file_id}/preview."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import JSONResponse, Response

from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.bodies import no_nul
from openify.api.timefmt import unix
from openify.errors import FilenameNotExists, InvalidParam, NoFileUploaded, TooManyFiles, UnsupportedMediaType
from openify.services.workspace import WORKSPACE_ID

router = APIRouter(tags=["files"])
# Types a browser shows without running anything; compared on the lower-cased type without parameters.
_INLINE = frozenset({"application/pdf", "text/plain", "text/csv", "text/markdown", "application/json"})
_INLINE_FAMILIES = ("image/", "audio/", "video/")
_NEVER_INLINE = frozenset({"image/svg+xml", "image/svg"})  # SVG is a document that runs script


@router.post("/files/upload", summary="Upload a file for use in messages", status_code=201, response_model=None)
async def upload(request: Request, ctx: AppKey, services: ServicesDep) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("The request must be multipart/form-data.")
    form = await request.form(max_files=10)
    try:
        parts = [v for _, v in form.multi_items() if isinstance(v, StarletteUpload)]
        if not parts or "file" not in form:
            raise NoFileUploaded()
        if len(parts) > 1:
            raise TooManyFiles()
        part = parts[0]
        part.filename = no_nul(part.filename)  # form fields strip NUL as JSON bodies do (schemas/bodies.py)
        if not part.filename:
            raise FilenameNotExists()
        user = form.get("user")
        if user is not None and not isinstance(user, str):
            raise InvalidParam("user must be a string", params="user")
        user = no_nul(user)
        limit = services.chat.files.max_upload_bytes(part.filename)
        data = await part.read(limit + 1)
        end_user_id = await asyncio.to_thread(services.chat.end_user_id, ctx.app_id, user or "DEFAULT-USER")
        row = await asyncio.to_thread(
            services.chat.files.upload, ctx.app_id, end_user_id, part.filename, part.content_type, data
        )
    finally:
        await form.close()
    # Dify's signed link (core/file/helpers.py), which opens the file at once; the keyed
    # /files/{id}/preview only serves files already sent with a message.
    url = services.file_links.upload_file(row.id)
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "size": row.size,
        "extension": row.extension,
        "mime_type": row.mime_type,
        "created_by": row.end_user_id,
        "created_at": unix(row.created_at),
        "preview_url": None,
        "source_url": url,
        "original_url": url,
        "user_id": None,
        "tenant_id": WORKSPACE_ID,
        "conversation_id": None,
        "file_key": None,
        "reference": None,
    }
    return JSONResponse(body, status_code=201)


@router.get("/files/{file_id}/preview", summary="The bytes of a file attached to a message", response_model=None)
async def preview(
    file_id: str,
    ctx: AppKey,
    services: ServicesDep,
    as_attachment: bool = False,
    user: str | None = None,  # noqa: ARG001 - accepted as Dify does; files are app-scoped here
) -> Response:
    row, data = await asyncio.to_thread(services.chat.files.preview, ctx.app_id, file_id)
    return file_response(data, row.mime_type, row.name, as_attachment=as_attachment, cache=True)


def file_response(data: bytes, mime_type: str, name: str, *, as_attachment: bool, cache: bool = False) -> Response:
    """A file's bytes as Dify serves them, made safe to open on the API's origin: only the passive types of
    `_INLINE` are shown in the browser; everything else (HTML, SVG, XML, scripts, unknown types, whatever the
    uploader claimed) is a download. `nosniff` keeps a browser from guessing another type, and `CSP: sandbox`
    keeps anything that still renders from running script on this origin."""
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
    if cache:  # a keyed preview: the key is the permission, so no shared cache may keep it
        headers["Cache-Control"] = "private, max-age=3600"
    media = mime_type.split(";", 1)[0].strip().lower()
    if media.startswith(("audio/", "video/")):
        headers["Accept-Ranges"] = "bytes"
    if as_attachment or not _inline(media):
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
        media = "application/octet-stream"
    return Response(data, media_type=media, headers=headers)


def _inline(media: str) -> bool:
    return media in _INLINE or (media.startswith(_INLINE_FAMILIES) and media not in _NEVER_INLINE)
