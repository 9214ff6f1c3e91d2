"""One module per Dify resource; `service_routers()` lists what is mounted under /v1 and /api."""

from __future__ import annotations

from fastapi import APIRouter

from openify.api.routes import app_info, end_users, health, models


def service_routers() -> list[APIRouter]:
    return [health.router, app_info.router, end_users.router, models.router]
