"""Annotations and annotation reply: /apps/annotations and /apps/annotation-reply (Dify's service API).

Dify checks no app mode here: any app key manages its app's annotations. Reply answers chat, agent-chat
(services/chat) and chatflow (services/workflows/chatflows) queries.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from openify.api.deps import AppKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, no_nul
from openify.api.schemas.bodies import JsonBody
from openify.api.timefmt import unix
from openify.errors import NotFound
from openify.services.annotations import MAX_PAGE
from openify.storage.tables import Annotation

router = APIRouter(tags=["annotations"])


class AnnotationBody(JsonBody):
    question: str
    answer: str


class ReplySettingsBody(JsonBody):
    """Required for `disable` too, as in Dify."""

    score_threshold: float
    embedding_provider_name: str
    embedding_model_name: str


def _item(row: Annotation) -> dict[str, Any]:
    return {
        "id": row.id,
        "question": row.question,
        "answer": row.answer,
        "hit_count": row.hit_count,
        "created_at": unix(row.created_at),
    }


@router.post("/apps/annotations", summary="Create an annotation", status_code=201, dependencies=JSON_BODY)
async def create_annotation(body: AnnotationBody, ctx: AppKey, services: ServicesDep) -> dict[str, Any]:
    row = await asyncio.to_thread(services.annotations.create, ctx.app_id, body.question, body.answer)
    return _item(row)


@router.get("/apps/annotations", summary="This app's annotations, newest first")
async def list_annotations(
    ctx: AppKey,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1)] = 20,
    keyword: str = "",
) -> dict[str, Any]:
    limit, keyword = min(limit, MAX_PAGE), no_nul(keyword) or ""
    # A page past the end is empty (Dify's paginate does not refuse it); the cap keeps OFFSET small.
    rows, total = await asyncio.to_thread(services.annotations.page, ctx.app_id, min(page, 100_000), limit, keyword)
    # Dify's has_more: a full page, whether or not anything follows it.
    data = [_item(r) for r in rows]
    return {"data": data, "has_more": len(rows) == limit, "limit": limit, "total": total, "page": page}


@router.put("/apps/annotations/{annotation_id}", summary="Update an annotation", dependencies=JSON_BODY)
async def update_annotation(
    annotation_id: str, body: AnnotationBody, ctx: AppKey, services: ServicesDep
) -> dict[str, Any]:
    row = await asyncio.to_thread(services.annotations.update, ctx.app_id, annotation_id, body.question, body.answer)
    return _item(row)


@router.delete("/apps/annotations/{annotation_id}", summary="Delete an annotation", status_code=204)
async def delete_annotation(annotation_id: str, ctx: AppKey, services: ServicesDep) -> Response:
    await asyncio.to_thread(services.annotations.delete, ctx.app_id, annotation_id)
    return Response(status_code=204)


@router.post(
    "/apps/annotation-reply/{action}",
    summary="Turn annotation reply on or off (a background job)",
    dependencies=JSON_BODY,
)
async def configure_reply(action: str, body: ReplySettingsBody, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    job_id, status = await asyncio.to_thread(
        services.annotations.configure,
        ctx.app_id,
        action,
        body.embedding_provider_name,
        body.embedding_model_name,
        body.score_threshold,
    )
    return {"job_id": job_id, "job_status": status}


@router.get("/apps/annotation-reply/{action}/status/{job_id}", summary="The state of an annotation reply job")
async def reply_job_status(action: str, job_id: str, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise NotFound() from None  # Dify's route takes only a UUID here
    return await asyncio.to_thread(services.annotations.job_status, ctx.app_id, action, job_id)
