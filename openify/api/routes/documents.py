"""Documents of a knowledge base: create and update by text or file, list, read, delete, download,
status actions and indexing status. Dify's legacy underscore aliases are routed too."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from openify.api.deps import DatasetKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, no_nul, uuid_or_404
from openify.api.routes.datasets import page_params
from openify.api.schemas.knowledge import (
    CreateByText,
    DocumentIds,
    DownloadZip,
    FileOptions,
    UpdateByText,
    document_body,
    indexing_status_body,
    page_body,
)
from openify.errors import FilenameNotExists, InvalidMetadata, InvalidParam, NoFileUploaded, TooManyFiles
from openify.services.knowledge.documents import DocumentOptions

router = APIRouter(tags=["documents"])


def _options(o: CreateByText | FileOptions | UpdateByText) -> DocumentOptions:
    return DocumentOptions(
        o.indexing_technique,
        o.doc_form,
        o.doc_language,
        o.process_rule,
        o.retrieval_model,
        o.embedding_model,
        o.embedding_model_provider,
    )


async def _upload(request: Request, required: bool = True) -> tuple[UploadFile | None, FileOptions]:
    """The multipart `file` part and the `data` JSON string, with Dify's errors for each malformed form.
    The form's spooled files stay open until the form is closed: on an error here, and in the route after."""
    try:
        return await _parse_upload(request, required)
    except BaseException:
        await request.close()
        raise


async def _parse_upload(request: Request, required: bool) -> tuple[UploadFile | None, FileOptions]:
    try:
        form = await request.form()
    except Exception:
        raise NoFileUploaded() from None
    files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if len(files) > 1:
        raise TooManyFiles()
    upload = files[0] if files else None
    if upload is None or "file" not in form:
        if required:
            raise NoFileUploaded()
        upload = None
    if upload is not None:
        upload.filename = no_nul(upload.filename)
        if not upload.filename:
            raise FilenameNotExists()
    raw = form.get("data")
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except json.JSONDecodeError as e:
        raise InvalidParam(f"data must be a JSON string: {e}", params="data") from None
    if not isinstance(data, dict):
        raise InvalidParam("data must be a JSON object", params="data")
    try:
        options = FileOptions.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "data"
        raise InvalidParam(f"{field}: {first['msg']}", params=field) from None
    return upload, options


async def _read(services: ServicesDep, upload: UploadFile) -> tuple[bytes, str]:
    ext = services.knowledge.documents.check_file(upload.filename or "", upload.size or 0, upload.content_type)
    data = await upload.read()
    services.knowledge.documents.check_file(upload.filename or "", len(data), upload.content_type)
    return data, ext


@router.post(
    "/datasets/{dataset_id}/document/create-by-text", dependencies=JSON_BODY, summary="Create a document from text"
)
@router.post("/datasets/{dataset_id}/document/create_by_text", dependencies=JSON_BODY, include_in_schema=False)
def create_by_text(dataset_id: str, body: CreateByText, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    view, batch = services.knowledge.documents.create(
        uuid_or_404(dataset_id), body.name, body.text.encode(), "txt", "text/plain", _options(body), "upload_file"
    )
    return {"document": document_body(view), "batch": batch}


@router.post("/datasets/{dataset_id}/document/create-by-file", summary="Create a document from a file")
@router.post("/datasets/{dataset_id}/document/create_by_file", include_in_schema=False)
async def create_by_file(dataset_id: str, request: Request, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    uuid_or_404(dataset_id)
    upload, options = await _upload(request)
    assert upload is not None  # noqa: S101 - required above
    try:
        data, ext = await _read(services, upload)
    finally:
        await request.close()
    view, batch = await run_in_threadpool(
        services.knowledge.documents.create,
        dataset_id,
        options.name or upload.filename or "",
        data,
        ext,
        upload.content_type,
        _options(options),
        "upload_file",
    )
    return {"document": document_body(view), "batch": batch}


@router.post(
    "/datasets/{dataset_id}/documents/{document_id}/update-by-text",
    dependencies=JSON_BODY,
    summary="Update a document by text",
)
@router.post(
    "/datasets/{dataset_id}/documents/{document_id}/update_by_text", dependencies=JSON_BODY, include_in_schema=False
)
def update_by_text(
    dataset_id: str, document_id: str, body: UpdateByText, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    if body.text is not None and body.name is None:
        raise InvalidParam("name is required when text is given", params="name")
    data = body.text.encode() if body.text is not None else None
    view, batch = services.knowledge.documents.update(
        uuid_or_404(dataset_id),
        uuid_or_404(document_id, "Document"),
        body.name,
        data,
        "txt" if data is not None else None,
        "text/plain" if data is not None else None,
        _options(body),
    )
    return {"document": document_body(view), "batch": batch}


@router.patch("/datasets/{dataset_id}/documents/{document_id}", summary="Update a document by file")
@router.post("/datasets/{dataset_id}/documents/{document_id}/update-by-file", summary="Update a document by file")
@router.post("/datasets/{dataset_id}/documents/{document_id}/update_by_file", include_in_schema=False)
async def update_by_file(
    dataset_id: str, document_id: str, request: Request, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    uuid_or_404(dataset_id)
    uuid_or_404(document_id, "Document")
    upload, options = await _upload(request, required=False)
    try:
        data, ext = await _read(services, upload) if upload is not None else (None, None)
    finally:
        await request.close()
    view, batch = await run_in_threadpool(
        services.knowledge.documents.update,
        dataset_id,
        document_id,
        options.name or (upload.filename if upload is not None else None),
        data,
        ext,
        upload.content_type if upload is not None else None,
        _options(options),
    )
    return {"document": document_body(view), "batch": batch}


@router.get("/datasets/{dataset_id}/documents", summary="List documents")
def list_documents(
    dataset_id: str,
    _key: DatasetKey,
    services: ServicesDep,
    page: int = 1,
    limit: int = 20,
    keyword: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    page, per_page = page_params(page, limit)
    views, total = services.knowledge.documents.list_page(
        uuid_or_404(dataset_id), page, per_page, no_nul(keyword), status
    )
    return page_body([document_body(v) for v in views], page, limit, total)


@router.post(
    "/datasets/{dataset_id}/documents/download-zip", dependencies=JSON_BODY, summary="Download documents as a ZIP"
)
def download_zip(dataset_id: str, body: DownloadZip, _key: DatasetKey, services: ServicesDep) -> Response:
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for document_id in dict.fromkeys(body.document_ids):
            doc, data = services.knowledge.documents.file(uuid_or_404(dataset_id), uuid_or_404(document_id, "Document"))
            name = (
                doc.name if doc.name.lower().endswith(f".{doc.file_extension}") else f"{doc.name}.{doc.file_extension}"
            )
            while name in used:
                name = f"{doc.id[:8]}-{name}"
            used.add(name)
            z.writestr(name, data)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="documents.zip"'},
    )


@router.patch(
    "/datasets/{dataset_id}/documents/status/{action}",
    dependencies=JSON_BODY,
    summary="Enable, disable, archive or un-archive",
)
def document_status(
    dataset_id: str, action: str, body: DocumentIds, _key: DatasetKey, services: ServicesDep
) -> dict[str, str]:
    services.knowledge.documents.set_status(uuid_or_404(dataset_id), action, body.document_ids)
    return {"result": "success"}


@router.get("/datasets/{dataset_id}/documents/{batch}/indexing-status", summary="Indexing status of a batch")
def indexing_status(dataset_id: str, batch: str, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    views = services.knowledge.documents.by_batch(uuid_or_404(dataset_id), no_nul(batch) or "")
    return {"data": [indexing_status_body(v) for v in views]}


@router.get("/datasets/{dataset_id}/documents/{document_id}", summary="Get a document")
def get_document(
    dataset_id: str, document_id: str, _key: DatasetKey, services: ServicesDep, metadata: str = "all"
) -> dict[str, Any]:
    if metadata not in ("all", "only", "without"):
        raise InvalidMetadata(f"Invalid metadata value: {metadata}")
    view = services.knowledge.documents.get(uuid_or_404(dataset_id), uuid_or_404(document_id, "Document"))
    body = document_body(view, detail=True)
    if metadata == "only":
        return {"id": body["id"], "doc_type": body["doc_type"], "doc_metadata": body["doc_metadata"]}
    if metadata == "without":
        body.pop("doc_metadata")
    return body


@router.get("/datasets/{dataset_id}/documents/{document_id}/download", summary="A download link of the document's file")
def download(
    dataset_id: str, document_id: str, request: Request, _key: DatasetKey, services: ServicesDep
) -> dict[str, str]:
    services.knowledge.documents.get(uuid_or_404(dataset_id), uuid_or_404(document_id, "Document"))
    query = services.knowledge.signed_download_query(document_id)
    base = services.settings.files_url.rstrip("/") or str(request.base_url).rstrip("/")
    prefix = request.url.path.split("/datasets/", 1)[0]
    return {"url": f"{base}{prefix}/datasets/{dataset_id}/documents/{document_id}/file?{query}"}


@router.get("/datasets/{dataset_id}/documents/{document_id}/file", include_in_schema=False)
def document_file(
    dataset_id: str, document_id: str, services: ServicesDep, expires_at: int = 0, sign: str = ""
) -> Response:
    """The signed link of `download`: no key needed, valid for an hour."""
    services.knowledge.check_download(document_id, expires_at, sign)
    doc, data = services.knowledge.documents.file(uuid_or_404(dataset_id), uuid_or_404(document_id, "Document"))
    name = doc.name if doc.name.lower().endswith(f".{doc.file_extension}") else f"{doc.name}.{doc.file_extension}"
    from urllib.parse import quote

    return Response(
        data, media_type=doc.mime_type, headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    )


@router.delete("/datasets/{dataset_id}/documents/{document_id}", summary="Delete a document", status_code=204)
def delete_document(dataset_id: str, document_id: str, _key: DatasetKey, services: ServicesDep) -> Response:
    services.knowledge.documents.delete(uuid_or_404(dataset_id), uuid_or_404(document_id, "Document"))
    return Response(status_code=204)
