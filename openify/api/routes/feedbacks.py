"""POST /messages/{id}/feedbacks and GET /app/feedbacks."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from openify.api.deps import AppKey, ServicesDep
from openify.api.schemas.chat_history import FeedbackBody, feedback
from openify.errors import InvalidParam
from openify.services.chat.messages import MessageNotFound

router = APIRouter(tags=["feedback"])


@router.post("/messages/{message_id}/feedbacks", summary="Like or dislike a message")
async def post_feedback(message_id: str, body: FeedbackBody, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    if body.rating not in (None, "like", "dislike"):
        raise InvalidParam("rating must be like, dislike or null", params="rating")
    end_user_id = await asyncio.to_thread(services.chat.find_end_user_id, ctx.app_id, body.user)
    if end_user_id is None:
        raise MessageNotFound()
    await asyncio.to_thread(
        services.chat.messages.feedback, ctx.app_id, end_user_id, message_id, body.rating, body.content
    )
    return {"result": "success"}


@router.get("/app/feedbacks", summary="Feedback on this app's messages, newest first")
async def app_feedbacks(
    ctx: AppKey,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=101)] = 20,
) -> dict[str, Any]:
    # A page past the end is empty (Dify's paginate does not refuse it); the cap keeps OFFSET small.
    rows = await asyncio.to_thread(services.chat.messages.app_feedbacks, ctx.app_id, min(page, 100_000), limit)
    return {"data": [feedback(f) for f in rows]}
