"""API keys record when they were last used, cheaply: one write per key per minute, not one per request."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from openify.services.container import Services


def test_last_used_at_is_written_on_use_at_most_once_a_minute(services: Services) -> None:
    token, info = services.keys.create("dataset")
    assert info.last_used_at is None
    updates: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            updates.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        for _ in range(50):
            services.keys._cache.clear()  # every request a cache miss: the worst case for writes
            assert services.keys.authenticate(token, "dataset") is not None
        assert len(updates) == 1
        (listed,) = services.keys.list()
        assert listed.last_used_at is not None
        first = listed.last_used_at
        # A minute later (as the throttle sees it), the next use writes again.
        services.keys._touched[info.id] -= 61
        services.keys._cache.clear()
        services.keys.authenticate(token, "dataset")
        assert len(updates) == 2
        assert services.keys.list()[0].last_used_at >= first  # type: ignore[operator]
        # A key of the other type is unknown to this lookup and records nothing.
        services.keys._touched.clear()
        services.keys._cache.clear()
        assert services.keys.authenticate(token, "app") is None
        assert len(updates) == 2
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
