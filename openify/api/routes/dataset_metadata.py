"""Metadata fields of a knowledge base and document metadata values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from openify.api.deps import DatasetKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, uuid_or_404
from openify.api.schemas.knowledge import DocumentMetadataBody, MetadataCreate, MetadataRename, metadata_field
from openify.services.knowledge.metadata import BUILT_IN_FIELDS

router = APIRouter(tags=["metadata"])


@router.post(
    "/datasets/{dataset_id}/metadata", dependencies=JSON_BODY, summary="Create a metadata field", status_code=201
)
def create_metadata(dataset_id: str, body: MetadataCreate, _key: DatasetKey, services: ServicesDep) -> JSONResponse:
    field = services.knowledge.metadata.create(uuid_or_404(dataset_id), body.type, body.name)
    return JSONResponse(metadata_field(field), status_code=201)


@router.get("/datasets/{dataset_id}/metadata", summary="List metadata fields")
def list_metadata(dataset_id: str, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    fields, built_in = services.knowledge.metadata.list_fields(uuid_or_404(dataset_id))
    return {"doc_metadata": [{**metadata_field(f), "count": n} for f, n in fields], "built_in_field_enabled": built_in}


@router.get("/datasets/{dataset_id}/metadata/built-in", summary="Built-in metadata fields")
def built_in_metadata(dataset_id: str, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    services.knowledge.datasets.get(uuid_or_404(dataset_id))
    return {"fields": [{"name": n, "type": t} for n, t in BUILT_IN_FIELDS]}


@router.post("/datasets/{dataset_id}/metadata/built-in/{action}", summary="Enable or disable built-in fields")
def toggle_built_in(dataset_id: str, action: str, _key: DatasetKey, services: ServicesDep) -> dict[str, str]:
    services.knowledge.metadata.set_built_in(uuid_or_404(dataset_id), action)
    return {"result": "success"}


@router.patch(
    "/datasets/{dataset_id}/metadata/{metadata_id}", dependencies=JSON_BODY, summary="Rename a metadata field"
)
def rename_metadata(
    dataset_id: str, metadata_id: str, body: MetadataRename, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    field = services.knowledge.metadata.rename(uuid_or_404(dataset_id), uuid_or_404(metadata_id, "Metadata"), body.name)
    return metadata_field(field)


@router.delete("/datasets/{dataset_id}/metadata/{metadata_id}", summary="Delete a metadata field", status_code=204)
def delete_metadata(dataset_id: str, metadata_id: str, _key: DatasetKey, services: ServicesDep) -> Response:
    services.knowledge.metadata.delete(uuid_or_404(dataset_id), uuid_or_404(metadata_id, "Metadata"))
    return Response(status_code=204)


@router.post(
    "/datasets/{dataset_id}/documents/metadata", dependencies=JSON_BODY, summary="Set documents' metadata values"
)
def document_metadata(
    dataset_id: str, body: DocumentMetadataBody, _key: DatasetKey, services: ServicesDep
) -> dict[str, str]:
    services.knowledge.metadata.set_document_values(
        uuid_or_404(dataset_id), [op.model_dump() for op in body.operation_data]
    )
    return {"result": "success"}
