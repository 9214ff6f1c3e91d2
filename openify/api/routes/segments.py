"""Chunks and child chunks of a document (prefix /datasets/{dataset_id}/documents/{document_id})."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from openify.api.deps import DatasetKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, no_nul, uuid_or_404
from openify.api.routes.datasets import page_params
from openify.api.schemas.knowledge import ChildChunkBody, SegmentsCreate, SegmentUpdate, child_chunk_body, segment_body

router = APIRouter(tags=["chunks"])
_DOC = "/datasets/{dataset_id}/documents/{document_id}"


def _doc(dataset_id: str, document_id: str) -> tuple[str, str]:
    return uuid_or_404(dataset_id), uuid_or_404(document_id, "Document")


def _seg(dataset_id: str, document_id: str, segment_id: str) -> tuple[str, str, str]:
    return uuid_or_404(dataset_id), uuid_or_404(document_id, "Document"), uuid_or_404(segment_id, "Segment")


@router.post(f"{_DOC}/segments", dependencies=JSON_BODY, summary="Add chunks to a document")
def create_segments(
    dataset_id: str, document_id: str, body: SegmentsCreate, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    views, doc_form = services.knowledge.segments.create(
        *_doc(dataset_id, document_id), [s.model_dump() for s in body.segments]
    )
    return {"data": [segment_body(v) for v in views], "doc_form": doc_form}


@router.get(f"{_DOC}/segments", summary="List chunks of a document")
def list_segments(
    dataset_id: str,
    document_id: str,
    _key: DatasetKey,
    services: ServicesDep,
    page: int = 1,
    limit: int = 20,
    keyword: str | None = None,
    status: Annotated[list[str] | None, Query()] = None,
    status_list: Annotated[list[str] | None, Query(alias="status[]")] = None,
) -> dict[str, Any]:
    page, per_page = page_params(page, limit)
    views, total, doc_form = services.knowledge.segments.list_page(
        *_doc(dataset_id, document_id), page, per_page, [*(status or []), *(status_list or [])], no_nul(keyword)
    )
    return {
        "data": [segment_body(v) for v in views],
        "doc_form": doc_form,
        "total": total,
        "has_more": len(views) == limit,
        "limit": limit,
        "page": page,
    }


@router.get(f"{_DOC}/segments/{{segment_id}}", summary="Get a chunk")
def get_segment(
    dataset_id: str, document_id: str, segment_id: str, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    view, doc_form = services.knowledge.segments.get(*_seg(dataset_id, document_id, segment_id))
    return {"data": segment_body(view), "doc_form": doc_form}


@router.post(f"{_DOC}/segments/{{segment_id}}", dependencies=JSON_BODY, summary="Update a chunk")
def update_segment(
    dataset_id: str, document_id: str, segment_id: str, body: SegmentUpdate, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    view, doc_form = services.knowledge.segments.update(
        *_seg(dataset_id, document_id, segment_id), body.segment.model_dump(exclude_unset=True)
    )
    return {"data": segment_body(view), "doc_form": doc_form}


@router.delete(f"{_DOC}/segments/{{segment_id}}", summary="Delete a chunk", status_code=204)
def delete_segment(
    dataset_id: str, document_id: str, segment_id: str, _key: DatasetKey, services: ServicesDep
) -> Response:
    services.knowledge.segments.delete(*_seg(dataset_id, document_id, segment_id))
    return Response(status_code=204)


@router.post(f"{_DOC}/segments/{{segment_id}}/child_chunks", dependencies=JSON_BODY, summary="Add a child chunk")
def create_child(
    dataset_id: str, document_id: str, segment_id: str, body: ChildChunkBody, _key: DatasetKey, services: ServicesDep
) -> dict[str, Any]:
    child = services.knowledge.segments.create_child(*_seg(dataset_id, document_id, segment_id), body.content)
    return {"data": child_chunk_body(child)}


@router.get(f"{_DOC}/segments/{{segment_id}}/child_chunks", summary="List child chunks")
def list_children(
    dataset_id: str,
    document_id: str,
    segment_id: str,
    _key: DatasetKey,
    services: ServicesDep,
    page: int = 1,
    limit: int = 20,
    keyword: str | None = None,
) -> dict[str, Any]:
    page, per_page = page_params(page, limit)
    rows, total = services.knowledge.segments.list_children(
        *_seg(dataset_id, document_id, segment_id), page, per_page, no_nul(keyword)
    )
    return {
        "data": [child_chunk_body(c) for c in rows],
        "total": total,
        "total_pages": (total + per_page - 1) // per_page,
        "page": page,
        "limit": limit,
    }


@router.patch(
    f"{_DOC}/segments/{{segment_id}}/child_chunks/{{child_chunk_id}}",
    dependencies=JSON_BODY,
    summary="Update a child chunk",
)
def update_child(
    dataset_id: str,
    document_id: str,
    segment_id: str,
    child_chunk_id: str,
    body: ChildChunkBody,
    _key: DatasetKey,
    services: ServicesDep,
) -> dict[str, Any]:
    child = services.knowledge.segments.update_child(
        *_seg(dataset_id, document_id, segment_id), uuid_or_404(child_chunk_id, "Child chunk"), body.content
    )
    return {"data": child_chunk_body(child)}


@router.delete(
    f"{_DOC}/segments/{{segment_id}}/child_chunks/{{child_chunk_id}}", summary="Delete a child chunk", status_code=204
)
def delete_child(
    dataset_id: str, document_id: str, segment_id: str, child_chunk_id: str, _key: DatasetKey, services: ServicesDep
) -> Response:
    services.knowledge.segments.delete_child(
        *_seg(dataset_id, document_id, segment_id), uuid_or_404(child_chunk_id, "Child chunk")
    )
    return Response(status_code=204)
