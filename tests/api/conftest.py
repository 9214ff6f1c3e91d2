"""API tests: every request runs with a guard that fails the test when the server touches the database on the
event loop's thread (a sync call in an `async def` route, dependency or background task stalls every request)."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

_ROOT = Path(__file__).resolve().parents[2]
_TESTS, _API = str(_ROOT / "tests"), str(_ROOT / "openify" / "api")


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _by_the_server(stack: traceback.StackSummary) -> bool:
    """A request's handler (an openify/api frame), or a task the server started (no test frame below it).
    A test may block its own loop to set up or inspect rows: that is not the server's doing."""
    files = [f.filename for f in stack]
    return any(f.startswith(_API) for f in files) or not any(f.startswith(_TESTS) for f in files)


@pytest.fixture(autouse=True)
def no_database_on_the_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("app").state.services.db.engine  # started: its lifespan may block
    found: list[str] = []

    def on_checkout(*_: Any) -> None:
        if _on_the_loop():
            stack = traceback.extract_stack()
            if _by_the_server(stack):
                ours = [f for f in stack if "/openify/" in f.filename or f.filename.startswith(_TESTS)]
                found.append("".join(traceback.format_list(ours[-20:])))

    event.listen(engine, "checkout", on_checkout)
    try:
        yield
    finally:
        event.remove(engine, "checkout", on_checkout)
    assert not found, f"{len(found)} database checkout(s) on the event loop; the first:\n{found[0]}"
