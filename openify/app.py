"""create_app(settings): wires settings, registries, services and routes into one ASGI app."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from openify import __version__, tokens
from openify.api import errors
from openify.api.body_limit import BodyLimit, body_limits
from openify.api.query import QueryCleaner
from openify.api.routes import (
    console,
    dify_plugins,
    file_links,
    health,
    mcp_server,
    openai_face,
    service_routers,
    web_app,
    web_sites,
)
from openify.plugins import build_registries
from openify.security.isolation import report as isolation_report
from openify.services.container import Services
from openify.settings import Settings

API_PREFIXES = ("/v1", "/api")  # Dify's prefix, and the one Openify documents
log = logging.getLogger("openify")


def create_app(settings: Settings) -> FastAPI:
    registries = build_registries(settings.plugins)
    services = Services.build(settings, registries)
    mcp_endpoint = mcp_server.McpEndpoint(services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        log.info("untrusted code isolation: %s", isolation_report(settings))
        tokens.warm_up()  # before serving: loading the vocabulary later would stall the event loop ~300 ms
        await services.stops.start()
        await services.following.start()
        mcp_sessions = AsyncExitStack()
        await mcp_sessions.enter_async_context(mcp_endpoint.running())  # apps' MCP server sessions
        # What is loaded by now (routes, registries, tables: about 190,000 objects) lives as long as the server.
        # Left to the collector, each full collection walked all of it: a pause of about 100 ms in every
        # request and run, once in a few hundred requests (bench/workflow.py). Frozen, they are never walked.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await mcp_sessions.aclose()
            await services.workflows.shutdown()  # live runs end as failed, stored by their own recorders
            await services.following.close()
            await services.stops.close()
            await services.models.aclose()
            await services.dify_plugins.source.runtime.close()  # plugin processes this loop started
            services.stop()

    app = FastAPI(
        title="Openify Service API",
        version=__version__,
        description="The Dify Service API, served by Openify. Every route is under /v1 and again under /api.",
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    app.add_middleware(QueryCleaner)  # empty query values are "not given"; NUL stripped from query and path
    app.add_middleware(BodyLimit, **body_limits(settings))  # before any route parses or authenticates a body
    for prefix in API_PREFIXES:
        for router in service_routers():
            app.include_router(router, prefix=prefix, include_in_schema=prefix == "/v1")
    app.include_router(health.router, include_in_schema=False)  # /health at the root too, for probes
    app.include_router(console.router)
    app.include_router(dify_plugins.console)
    app.include_router(dify_plugins.files)  # where Dify plugins upload the files they make (signed URLs)
    app.include_router(file_links.router)  # signed file links live at the root, as Dify's /files blueprint
    app.mount(openai_face.PREFIX, openai_face.face_app(services))  # every app as an OpenAI model
    app.include_router(mcp_server.console)  # publishing an app as an MCP server (Dify's console paths)
    app.mount("/mcp/server", mcp_endpoint)  # every app as an MCP server: /mcp/server/{server_code}/mcp
    # The web app: the site pages, their static files and the web API (issue 19).
    app.include_router(web_app.router, include_in_schema=False)
    app.include_router(web_sites.console_router)
    app.include_router(web_sites.pages_router)
    app.mount("/web-static", web_sites.static_files(), name="web-static")
    return app
