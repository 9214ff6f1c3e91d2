"""App information: /info, /parameters, /meta, /site (every app mode)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from openify.api.deps import AppKey, SettingsDep
from openify.services import app_parameters

router = APIRouter(tags=["app"])


@router.get("/info", summary="Basic information of the app")
def get_info(ctx: AppKey) -> dict[str, Any]:
    return app_parameters.info(ctx.app)


@router.get("/parameters", summary="Input form, features and limits of the app")
def get_parameters(ctx: AppKey, settings: SettingsDep) -> dict[str, Any]:
    return app_parameters.parameters(ctx.app, settings.upload)


@router.get("/meta", summary="Tool icons of the app")
def get_meta(ctx: AppKey) -> dict[str, Any]:
    return app_parameters.meta(ctx.app)


@router.get("/site", summary="WebApp settings of the app")
def get_site(ctx: AppKey) -> dict[str, Any]:
    return app_parameters.site(ctx.app)
