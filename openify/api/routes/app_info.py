"""App information: /info, /parameters, /meta, /site (every app mode)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openify.api.deps import AppKey, ServicesDep, SettingsDep
from openify.services import app_parameters
from openify.services.sites import site_body

router = APIRouter(tags=["app"])


@router.get("/info", summary="Basic information of the app")
def get_info(ctx: AppKey) -> dict[str, Any]:
    return app_parameters.info(ctx.app)


@router.get("/parameters", summary="Input form, features and limits of the app")
def get_parameters(ctx: AppKey, settings: SettingsDep, services: ServicesDep) -> dict[str, Any]:
    params = app_parameters.parameters(ctx.app, settings.upload)
    if ctx.app.mode in ("chat", "agent-chat", "completion"):
        # Dify reads these apps' annotation_reply from their reply setting (AppModelConfig.annotation_reply_dict),
        # not from the exported features; workflow apps keep their features'.
        setting = services.annotations.setting(ctx.app.id)
        reply: dict[str, Any] = {"enabled": False}
        if setting is not None and setting.enabled:
            reply = {
                "enabled": True,
                "score_threshold": setting.score_threshold,
                "embedding_model": {
                    "embedding_provider_name": setting.embedding_provider_name,
                    "embedding_model_name": setting.embedding_model_name,
                },
            }
        params["annotation_reply"] = reply
    return params


@router.get("/meta", summary="Tool icons of the app")
def get_meta(ctx: AppKey) -> dict[str, Any]:
    return app_parameters.meta(ctx.app)


@router.get("/site", summary="WebApp settings of the app")
def get_site(ctx: AppKey, services: ServicesDep) -> dict[str, Any]:
    site = services.sites.get(ctx.app_id)  # the web page's settings, once `openify app site` made them
    return site_body(site, ctx.app) if site is not None else app_parameters.site(ctx.app)
