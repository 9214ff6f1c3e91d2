"""Configured models: GET /workspaces/current/models/model-types/{model_type} (dataset key, as in Dify)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from openify.api.deps import DatasetKey, ServicesDep
from openify.services.workspace import WORKSPACE_ID

router = APIRouter(tags=["models"])

ModelType = Literal["text-embedding", "rerank", "llm", "tts", "speech2text", "moderation"]


@router.get("/workspaces/current/models/model-types/{model_type}", summary="Models available for a model type")
def list_models(model_type: ModelType, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    return services.models.list_models(model_type, tenant_id=WORKSPACE_ID)
