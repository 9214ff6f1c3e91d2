"""create_app(settings): wires settings, registries, services and routes into one ASGI app."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from openify import __version__
from openify.api import errors
from openify.api.routes import console, file_links, health, service_routers, web_app, web_sites
from openify.plugins import build_registries
from openify.services.container import Services
from openify.settings import Settings

API_PREFIXES = ("/v1", "/api")  # Dify's prefix, and the one Openify documents


def create_app(settings: Settings) -> FastAPI:
    registries = build_registries(settings.plugins)
    services = Services.build(settings, registries)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        await services.stops.start()
        await services.following.start()
        # What is loaded by now (routes, registries, tables: about 190,000 objects) lives as long as the server.
        # Left to the collector, each full collection walked all of it: a pause of about 100 ms in every
        # request and run, once in a few hundred requests (bench/workflow.py). Frozen, they are never walked.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await services.workflows.shutdown()  # live runs end as failed, stored by their own recorders
            await services.following.close()
            await services.stops.close()
            await services.models.aclose()
            services.stop()

    app = FastAPI(
        title="Openify Service API",
        version=__version__,
        description="The Dify Service API, served by Openify. Every route is under /v1 and again under /api.",
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    for prefix in API_PREFIXES:
        for router in service_routers():
            app.include_router(router, prefix=prefix, include_in_schema=prefix == "/v1")
    app.include_router(health.router, include_in_schema=False)  # /health at the root too, for probes
    app.include_router(console.router)
    app.include_router(file_links.router)  # signed file links live at the root, as Dify's /files blueprint
    # The web app: the site pages, their static files and the web API (issue 19).
    app.include_router(web_app.router, include_in_schema=False)
    app.include_router(web_sites.console_router)
    app.include_router(web_sites.pages_router)
    app.mount("/web-static", web_sites.static_files(), name="web-static")
    return app
