"""The server's start leaves what it loaded out of the collector's full walks; its stop gives it back."""

from __future__ import annotations

import gc

from openify.app import create_app
from openify.settings import Settings


async def test_startup_objects_are_frozen_while_the_server_runs(settings: Settings) -> None:
    gc.unfreeze()
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() > 10_000  # the app's routes, registries and tables at least
    assert gc.get_freeze_count() == 0  # back to the collector once the server stops
