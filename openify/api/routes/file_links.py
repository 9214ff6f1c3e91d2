"""The signed file links of messages and workflow runs (security/file_links.py), served at the root as Dify's
`files` blueprint is: `GET /files/{id}/file-preview` for uploads, `GET /files/tools/{id}.{extension}` for files
that nodes made. No API key: the link's signature is the permission, until it expires."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter
from starlette.responses import Response

from openify.api.deps import ServicesDep
from openify.api.routes.files import file_response
from openify.errors import Forbidden, InvalidParam, NotFound

router = APIRouter(tags=["files"])
_GONE = "File not found or signature is invalid"


def _required(**params: str) -> None:
    for name, value in params.items():
        if not value:
            raise InvalidParam(f"{name} is required", params=name)


def _file_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(_GONE) from None


@router.get("/files/{file_id}/file-preview", include_in_schema=False)
async def upload_file(
    file_id: str,
    services: ServicesDep,
    timestamp: str = "",
    nonce: str = "",
    sign: str = "",
    as_attachment: bool = False,
) -> Response:
    _required(timestamp=timestamp, nonce=nonce, sign=sign)
    # Dify answers a bad or expired signature like a missing file (services/file_service.py).
    if not services.file_links.valid(file_id, timestamp, nonce, sign):
        raise NotFound(_GONE)
    row, data = await asyncio.to_thread(services.chat.files.linked, _file_id(file_id))
    return file_response(data, row.mime_type, row.name, as_attachment=as_attachment)


@router.get("/files/tools/{file_id}.{extension}", include_in_schema=False)
async def tool_file(
    file_id: str,
    extension: str,  # noqa: ARG001 - part of Dify's link; the stored file knows its own type
    services: ServicesDep,
    timestamp: str = "",
    nonce: str = "",
    sign: str = "",
    as_attachment: bool = False,
) -> Response:
    _required(timestamp=timestamp, nonce=nonce, sign=sign)
    if not services.file_links.valid(file_id, timestamp, nonce, sign):
        raise Forbidden("Invalid request.")  # Dify: 403 here, unlike the upload link
    # Dify answers a missing tool file 415 (its handler turns every error into UnsupportedFileTypeError); a
    # missing file is a 404 here.
    data, name, mime = await asyncio.to_thread(services.workflows.files.tool_file, _file_id(file_id))
    return file_response(data, mime, name, as_attachment=as_attachment)
