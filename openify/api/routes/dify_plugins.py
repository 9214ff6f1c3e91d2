"""Dify plugins over HTTP: the console API (install, list, uninstall, credentials; admin token, as the other
console routes), and the signed upload URL that plugins POST their files to (the SDK's `session.file.upload`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from openify.api.deps import ServicesDep
from openify.api.routes.console import require_admin
from openify.api.schemas.bodies import JsonBody
from openify.errors import Forbidden, InvalidParam

console = APIRouter(prefix="/console/api/dify-plugins", tags=["console"], dependencies=[Depends(require_admin)])
files = APIRouter(tags=["files"])

_MAX_PACKAGE_BYTES = 200 * 1024 * 1024
_MAX_PLUGIN_FILE_BYTES = 50 * 1024 * 1024


class InstallBody(JsonBody):  # JsonBody: NUL characters stripped
    source: str = Field(
        min_length=1,
        max_length=4096,
        description="A plugin folder, a .difypkg path on the server, or author/name:version[@hash]",
    )


class CredentialsBody(JsonBody):  # JsonBody: NUL characters stripped
    credentials: dict[str, Any] = Field(description="The provider's credential fields")


@console.post(
    "/install", status_code=202, summary="Install a Dify plugin (a background job): JSON source or a .difypkg upload"
)
async def install(request: Request, services: ServicesDep) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form()
        package = form.get("package")
        if not hasattr(package, "read"):
            raise InvalidParam("package (a .difypkg file) is required", params="package")
        data = await package.read(_MAX_PACKAGE_BYTES + 1)  # type: ignore[union-attr]  # an UploadFile, checked above
        if len(data) > _MAX_PACKAGE_BYTES:
            raise InvalidParam(f"package is larger than {_MAX_PACKAGE_BYTES >> 20} MB", params="package")
        incoming = services.settings.data_dir / "dify_plugins" / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        path = incoming / f"{uuid.uuid4().hex}.difypkg"
        path.write_bytes(data)
        source = str(path)
    else:
        try:
            body = InstallBody.model_validate_json(await request.body())
        except ValidationError as exc:  # read by hand (multipart or JSON): the same 400 envelope as FastAPI's
            raise RequestValidationError(exc.errors()) from None
        source = body.source
    return await run_in_threadpool(services.dify_plugins.install, source)


@console.get("", summary="List Dify plugins with their install status, tools and agent strategies")
def list_plugins(services: ServicesDep) -> dict[str, Any]:
    return {"data": services.dify_plugins.list()}


@console.get("/{author}/{name}", summary="One Dify plugin: its install progress, then its tools")
def get_plugin(author: str, name: str, services: ServicesDep) -> dict[str, Any]:
    return services.dify_plugins.get(f"{author}/{name}")


@console.delete("/{author}/{name}", status_code=204, summary="Uninstall a Dify plugin")
async def uninstall(author: str, name: str, services: ServicesDep) -> Response:
    await services.dify_plugins.uninstall(f"{author}/{name}")
    return Response(status_code=204)


@console.put(
    "/{author}/{name}/{provider}/credentials", summary="Store a tool provider's credentials (never shown again)"
)
async def set_credentials(
    author: str, name: str, provider: str, body: CredentialsBody, services: ServicesDep
) -> dict[str, Any]:
    return await services.dify_plugins.set_credentials(f"{author}/{name}/{provider}", body.credentials)


@files.post("/files/dify-plugins/upload/{upload_id}", include_in_schema=False)
async def plugin_upload(
    upload_id: str,
    services: ServicesDep,
    file: Annotated[UploadFile, File()],
    timestamp: Annotated[str, Query()] = "",
    nonce: Annotated[str, Query()] = "",
    sign: Annotated[str, Query()] = "",
) -> JSONResponse:
    """A plugin's file upload, to the signed URL its backwards `upload_file` call got; 201 with Dify's answer."""
    if not services.file_links.valid(upload_id, timestamp, nonce, sign):
        raise Forbidden("Invalid request.")
    data = await file.read(_MAX_PLUGIN_FILE_BYTES + 1)
    if len(data) > _MAX_PLUGIN_FILE_BYTES:
        raise InvalidParam(f"file is larger than {_MAX_PLUGIN_FILE_BYTES >> 20} MB")
    name = Path(file.filename or "file").name
    mime = file.content_type or "application/octet-stream"
    stored = await services.workflows.files.save(data, name, mime)
    # The SDK's UploadFileResponse: id, name, size, extension, mime_type, preview_url (its download link).
    body = {
        "id": stored["id"],
        "name": name,
        "size": len(data),
        "extension": str(stored.get("extension") or "").lstrip("."),
        "mime_type": mime,
        "preview_url": stored.get("url"),
    }
    return JSONResponse(body, status_code=201)
