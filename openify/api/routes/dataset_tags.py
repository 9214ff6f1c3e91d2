"""Knowledge tags: /datasets/tags, /datasets/tags/binding, /datasets/tags/unbinding, /datasets/{id}/tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from openify.api.deps import DatasetKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, uuid_or_404
from openify.api.schemas.knowledge import (
    TagBinding,
    TagCreate,
    TagDelete,
    TagUnbinding,
    TagUpdate,
    tag_body,
    tags_of_dataset,
)
from openify.errors import InvalidParam

router = APIRouter(tags=["tags"])


@router.get("/datasets/tags", summary="List knowledge tags")
def list_tags(_key: DatasetKey, services: ServicesDep) -> list[dict[str, Any]]:
    return [tag_body(v) for v in services.knowledge.tags.list_all()]


@router.post("/datasets/tags", dependencies=JSON_BODY, summary="Create a knowledge tag")
def create_tag(body: TagCreate, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    return tag_body(services.knowledge.tags.create(body.name))


@router.patch("/datasets/tags", dependencies=JSON_BODY, summary="Rename a knowledge tag")
def rename_tag(body: TagUpdate, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    return tag_body(services.knowledge.tags.rename(body.tag_id, body.name))


@router.delete("/datasets/tags", dependencies=JSON_BODY, summary="Delete a knowledge tag", status_code=204)
def delete_tag(body: TagDelete, _key: DatasetKey, services: ServicesDep) -> Response:
    services.knowledge.tags.delete(body.tag_id)
    return Response(status_code=204)


@router.post("/datasets/tags/binding", dependencies=JSON_BODY, summary="Bind tags to a knowledge base", status_code=204)
def bind_tags(body: TagBinding, _key: DatasetKey, services: ServicesDep) -> Response:
    services.knowledge.tags.bind(body.tag_ids, uuid_or_404(body.target_id))
    return Response(status_code=204)


@router.post(
    "/datasets/tags/unbinding", dependencies=JSON_BODY, summary="Unbind tags from a knowledge base", status_code=204
)
def unbind_tags(body: TagUnbinding, _key: DatasetKey, services: ServicesDep) -> Response:
    tag_ids = list(body.tag_ids or []) + ([body.tag_id] if body.tag_id else [])
    if not tag_ids:
        raise InvalidParam("tag_ids or tag_id is required", params="tag_ids")
    services.knowledge.tags.unbind(tag_ids, uuid_or_404(body.target_id))
    return Response(status_code=204)


@router.get("/datasets/{dataset_id}/tags", summary="Tags of a knowledge base")
def dataset_tags(dataset_id: str, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    return tags_of_dataset(services.knowledge.tags.of_dataset(uuid_or_404(dataset_id)))
