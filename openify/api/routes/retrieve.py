"""POST /datasets/{dataset_id}/retrieve: search a knowledge base (Dify's hit testing). Dify serves the same
resource at /datasets/{dataset_id}/hit-testing too (HitTestingApi), which its Python SDK calls."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openify.api.deps import DatasetKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY, uuid_or_404
from openify.api.schemas.knowledge import RetrieveBody, record_body

router = APIRouter(tags=["knowledge bases"])


@router.post("/datasets/{dataset_id}/hit-testing", dependencies=JSON_BODY, summary="Retrieve chunks (hit testing)")
@router.post("/datasets/{dataset_id}/retrieve", dependencies=JSON_BODY, summary="Retrieve chunks from a knowledge base")
def retrieve(dataset_id: str, body: RetrieveBody, _key: DatasetKey, services: ServicesDep) -> dict[str, Any]:
    hits = services.knowledge.retrieval.retrieve(uuid_or_404(dataset_id), body.query, body.retrieval_model)
    return {"query": {"content": body.query}, "records": [record_body(h) for h in hits]}
