"""Knowledge bases: POST/GET /datasets, GET/PATCH/DELETE /datasets/{dataset_id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from openify.api.deps import DatasetKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, no_nul, uuid_or_404
from openify.api.schemas.knowledge import DatasetCreate, DatasetUpdate, dataset_body, page_body

router = APIRouter(tags=["knowledge bases"])
MAX_PAGE = 1_000_000  # keeps OFFSET within a 64-bit integer on PostgreSQL


def page_params(page: int, limit: int) -> tuple[int, int]:
    """Dify pages with Flask-SQLAlchemy's `paginate(..., max_per_page=100, error_out=False)`, which clamps rather
    than refuses: a page below 1 is page 1, a limit below 1 is 20, and a page past the end is empty. A page past
    MAX_PAGE is read as MAX_PAGE + 1, empty, so OFFSET stays within a 64-bit integer on PostgreSQL."""
    return min(max(page, 1), MAX_PAGE + 1), 20 if limit < 1 else min(limit, 100)


@router.post("/datasets", dependencies=JSON_BODY, summary="Create a knowledge base")
def create_dataset(body: DatasetCreate, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    view = services.knowledge.datasets.create(
        body.name,
        body.description,
        body.indexing_technique,
        body.permission,
        body.provider,
        body.embedding_model,
        body.embedding_model_provider,
        body.retrieval_model,
        body.summary_index_setting,
    )
    return dataset_body(view)


@router.get("/datasets", summary="List knowledge bases")
def list_datasets(
    _key: DatasetKey,
    services: ServicesDep,
    page: int = 1,
    limit: int = 20,
    keyword: str | None = None,
    include_all: bool = False,
    tag_ids: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    del include_all  # one workspace owner sees every knowledge base
    page, per_page = page_params(page, limit)
    views, total = services.knowledge.datasets.list_page(
        page, per_page, no_nul(keyword), [t for t in map(no_nul, tag_ids or []) if t]
    )
    return page_body([dataset_body(v) for v in views], page, limit, total)


@router.get("/datasets/{dataset_id}", summary="Get a knowledge base")
def get_dataset(dataset_id: str, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    return dataset_body(services.knowledge.datasets.get(uuid_or_404(dataset_id)))


@router.patch("/datasets/{dataset_id}", dependencies=JSON_BODY, summary="Update a knowledge base")
def update_dataset(dataset_id: str, body: DatasetUpdate, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    view = services.knowledge.datasets.update(uuid_or_404(dataset_id), changes)
    return dataset_body(view, with_members=True)


@router.delete("/datasets/{dataset_id}", summary="Delete a knowledge base", status_code=204)
def delete_dataset(dataset_id: str, _key: DatasetKey, services: ServicesDep) -> Response:
    services.knowledge.datasets.delete(uuid_or_404(dataset_id))
    return Response(status_code=204)
