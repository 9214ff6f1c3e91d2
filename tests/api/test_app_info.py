"""GET /info, /parameters, /meta, /site for each app mode, under /v1 and /api; GET /end-users/{id}."""

from __future__ import annotations

import httpx
import pytest
import yaml

from openify.services.container import Services
from tests.api.dify import assert_dify_error
from tests.conftest import DSL_DIR, AppKit, import_app

EASY_UI = {
    "chat": "22-chat-0.1.5-zhouyi-master-zh.yml",
    "agent-chat": "23-agent-chat-0.3.1-pdf-translate-mcp-zh.yml",
    "completion": "25-completion-noversion-sql-creator.yml",
}
PARAMETER_KEYS = {
    "opening_statement", "suggested_questions", "suggested_questions_after_answer", "speech_to_text",
    "text_to_speech", "retriever_resource", "annotation_reply", "more_like_this", "sensitive_word_avoidance",
    "user_input_form", "file_upload", "system_parameters",
}


@pytest.mark.parametrize("mode", sorted(EASY_UI))
@pytest.mark.parametrize("prefix", ["/v1", "/api"])
async def test_info_and_parameters_follow_the_dsl(
    client: httpx.AsyncClient, services: Services, mode: str, prefix: str
) -> None:
    doc = yaml.safe_load((DSL_DIR / EASY_UI[mode]).read_text())
    kit = import_app(services, DSL_DIR / EASY_UI[mode])

    info = (await client.get(f"{prefix}/info", headers=kit.auth)).json()
    assert info == {"name": doc["app"]["name"], "description": doc["app"].get("description") or "", "tags": [],
                    "mode": mode, "author_name": ""}

    r = await client.get(f"{prefix}/parameters", headers=kit.auth)
    assert r.status_code == 200, r.text
    params = r.json()
    assert set(params) == PARAMETER_KEYS
    mc = doc["model_config"]
    assert params["opening_statement"] == (mc.get("opening_statement") or "")
    assert params["suggested_questions"] == (mc.get("suggested_questions") or [])
    assert params["user_input_form"] == mc.get("user_input_form", [])
    assert params["system_parameters"] == {
        "file_size_limit": 15, "image_file_size_limit": 10, "audio_file_size_limit": 50,
        "video_file_size_limit": 100, "workflow_file_upload_limit": 10,
    }
    assert params["text_to_speech"]["autoPlay"] in ("enabled", "disabled")

    site = (await client.get(f"{prefix}/site", headers=kit.auth)).json()
    assert site["title"] == doc["app"]["name"] and site["icon_type"] in ("emoji", "image")
    meta = (await client.get(f"{prefix}/meta", headers=kit.auth)).json()
    assert isinstance(meta["tool_icons"], dict)


async def test_chat_app_parameters_carry_its_opening_and_questions(client: httpx.AsyncClient, chat_app: AppKit) -> None:
    params = (await client.get("/v1/parameters", headers=chat_app.auth)).json()
    assert params["opening_statement"].startswith("我是精通中国传统周易")
    assert params["suggested_questions"] == ["帮我算一卦"]


async def test_app_key_reaches_only_its_own_app(client: httpx.AsyncClient, services: Services) -> None:
    a = import_app(services, DSL_DIR / EASY_UI["chat"])
    b = import_app(services, DSL_DIR / EASY_UI["completion"])
    assert (await client.get("/v1/info", headers=a.auth)).json()["mode"] == "chat"
    assert (await client.get("/v1/info", headers=b.auth)).json()["mode"] == "completion"


async def test_end_user_is_readable_by_its_app_only(client: httpx.AsyncClient, services: Services) -> None:
    a = import_app(services, DSL_DIR / EASY_UI["chat"])
    b = import_app(services, DSL_DIR / EASY_UI["completion"])
    user = services.end_users.get_or_create(a.app_id, "alice@example.com")
    assert services.end_users.get_or_create(a.app_id, "alice@example.com").id == user.id  # created once

    r = await client.get(f"/v1/end-users/{user.id}", headers=a.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == user.id and body["app_id"] == a.app_id
    assert body["session_id"] == body["external_user_id"] == "alice@example.com"
    assert body["type"] == "service-api" and body["is_anonymous"] is False
    assert body["created_at"].endswith("Z") and "T" in body["created_at"]

    assert_dify_error(await client.get(f"/v1/end-users/{user.id}", headers=b.auth), 404, "end_user_not_found")
    assert_dify_error(await client.get("/v1/end-users/nobody", headers=a.auth), 404, "end_user_not_found")


async def test_health_and_docs_need_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    assert (await client.get("/v1/health")).status_code == 200
    assert (await client.get("/v1/")).json()["api_version"] == "v1"
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/parameters" in spec["paths"] and "/v1/info" in spec["paths"]


@pytest.mark.parametrize(
    ("name", "mode"),
    [("09-workflow-0.3.1-dual-switch-variable-aggregator.yml", "workflow"),
     ("20-chatflow-0.5.0-conversation-var-v1-overwrite.yml", "advanced-chat")],
)
async def test_workflow_modes_serve_start_inputs_and_features(
    client: httpx.AsyncClient, services: Services, name: str, mode: str
) -> None:
    doc = yaml.safe_load((DSL_DIR / name).read_text())
    kit = import_app(services, DSL_DIR / name)
    assert (await client.get("/v1/info", headers=kit.auth)).json()["mode"] == mode
    params = (await client.get("/v1/parameters", headers=kit.auth)).json()
    assert set(params) == PARAMETER_KEYS
    start = next(n["data"] for n in doc["workflow"]["graph"]["nodes"] if n["data"]["type"] == "start")
    form = params["user_input_form"]
    assert [next(iter(item)) for item in form] == [v["type"] for v in start["variables"]]
    assert [next(iter(item.values()))["variable"] for item in form] == [v["variable"] for v in start["variables"]]
    assert params["file_upload"] == doc["workflow"]["features"]["file_upload"]
    assert params["retriever_resource"] == {"enabled": True}
    assert (await client.get("/v1/site", headers=kit.auth)).json()["title"] == doc["app"]["name"]
