"""End users: GET /end-users/{end_user_id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openify.api.deps import AppKey, ServicesDep
from openify.api.timefmt import iso
from openify.services.workspace import WORKSPACE_ID

router = APIRouter(tags=["end users"])


@router.get("/end-users/{end_user_id}", summary="An end user of this app")
def get_end_user(end_user_id: str, ctx: AppKey, services: ServicesDep) -> dict[str, Any]:
    user = services.end_users.get(ctx.app_id, end_user_id)
    return {
        "id": user.id,
        "tenant_id": WORKSPACE_ID,
        "app_id": user.app_id,
        "type": user.type,
        "external_user_id": user.session_id,
        "name": user.name,
        "is_anonymous": user.is_anonymous,
        "session_id": user.session_id,
        # Dify answers ISO-8601 here, unlike the Unix seconds everywhere else.
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }
