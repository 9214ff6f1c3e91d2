"""The signed file links of messages and workflow runs (security/file_links.py), served at the root as Dify's
`files` blueprint is: `GET /files/{id}/file-preview` for uploads, `GET /files/tools/{id}.{extension}` for files
that nodes made. No API key: the link's signature is the permission, until it expires."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from openify.api.deps import ServicesDep
from openify.api.routes.files import file_response
from openify.errors import Forbidden, InvalidParam, NotFound

router = APIRouter(tags=["files"])
_GONE = "File not found or signature is invalid"


@dataclass
class SignedQuery:
    """The query of a signed link (security/file_links.py); each part is required."""

    timestamp: str = ""
    nonce: str = ""
    sign: str = ""
    as_attachment: bool = False

    def checked(self) -> SignedQuery:
        for name in ("timestamp", "nonce", "sign"):
            if not getattr(self, name):
                raise InvalidParam(f"{name} is required", params=name)
        return self


Signed = Annotated[SignedQuery, Depends()]


def _file_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(_GONE) from None


@router.get("/files/{file_id}/file-preview", include_in_schema=False)
async def upload_file(file_id: str, services: ServicesDep, link: Signed) -> Response:
    q = link.checked()
    # Dify answers a bad or expired signature like a missing file (services/file_service.py).
    if not services.file_links.valid(file_id, q.timestamp, q.nonce, q.sign):
        raise NotFound(_GONE)
    row, data = await asyncio.to_thread(services.chat.files.linked, _file_id(file_id))
    return file_response(data, row.mime_type, row.name, as_attachment=q.as_attachment)


@router.get("/files/tools/{file_id}.{extension}", include_in_schema=False)
async def tool_file(
    file_id: str,
    extension: str,  # noqa: ARG001 - part of Dify's link; the stored file knows its own type
    services: ServicesDep,
    link: Signed,
) -> Response:
    q = link.checked()
    if not services.file_links.valid(file_id, q.timestamp, q.nonce, q.sign):
        raise Forbidden("Invalid request.")  # Dify: 403 here, unlike the upload link
    # Dify answers a missing tool file 415 (its handler turns every error into UnsupportedFileTypeError); a
    # missing file is a 404 here.
    data, name, mime = await asyncio.to_thread(services.workflows.files.tool_file, _file_id(file_id))
    return file_response(data, mime, name, as_attachment=q.as_attachment)
