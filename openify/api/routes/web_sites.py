"""Console API for sites (`/console/api/apps/{app_id}/site`) and the site pages (`/chat/{code}`, ...).

The pages are static files inside the package (`openify/web/`): plain ES modules, no build step, so
installing Openify needs no Node. A page reads its code from its own URL and talks to `/web-api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from openify.api.deps import ServicesDep
from openify.api.routes.console import Admin
from openify.api.schemas.bodies import JsonBody
from openify.errors import NotFound
from openify.services.sites import PAGE_BY_MODE, page_url, site_body

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
# Scripts only from this server: a Markdown answer that slipped past DOMPurify still could not run code.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
console_router = APIRouter(prefix="/console/api", tags=["console"])
pages_router = APIRouter(include_in_schema=False)


class SiteBody(JsonBody):  # JsonBody: NUL characters stripped
    model_config = ConfigDict(extra="forbid")

    enable_site: bool | None = None
    title: str | None = Field(None, min_length=1, max_length=255)
    icon: str | None = Field(None, max_length=255)
    description: str | None = None
    copyright: str | None = Field(None, max_length=255)
    privacy_policy: str | None = Field(None, max_length=255)
    default_language: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    chat_color_theme: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{3,8}$")
    show_workflow_steps: bool | None = None
    use_icon_as_answer_icon: bool | None = None


@console_router.post("/apps/{app_id}/site", summary="Enable, disable or change an app's site")
async def configure_site(app_id: str, body: SiteBody, _: Admin, services: ServicesDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    enabled = changes.pop("enable_site", None)
    site, app = await run_in_threadpool(services.sites.configure, app_id, enabled, **changes)
    return {"code": site.code, "url": page_url(site, app.mode), "enable_site": site.enabled, **site_body(site, app)}


def _page(kind: str) -> Any:
    async def page(code: str, services: ServicesDep) -> FileResponse:
        _, app = await run_in_threadpool(services.sites.by_code, code)
        if PAGE_BY_MODE.get(app.mode) != kind:
            raise NotFound("Site not found.")
        return FileResponse(WEB_DIR / f"{kind}.html", headers=PAGE_HEADERS)

    return page


for _kind in ("chat", "completion", "workflow"):
    pages_router.add_api_route(f"/{_kind}/{{code}}", _page(_kind), methods=["GET"])


def static_files() -> StaticFiles:
    return StaticFiles(directory=WEB_DIR)
