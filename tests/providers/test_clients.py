"""The provider client pool closes what it replaces: no session is left for the collector to find."""

from __future__ import annotations

import asyncio

import aiohttp

from openify.providers.clients import ClientPool
from openify.providers.config import ProviderConfig


async def _session(pool: ClientPool, config: ProviderConfig) -> aiohttp.ClientSession:
    return pool.async_client("p", config)


def test_sessions_of_ended_loops_are_closed() -> None:
    pool, config = ClientPool(), ProviderConfig()
    first = asyncio.run(_session(pool, config))  # a loop that has ended since (a test's, a worker's)
    second = asyncio.run(_session(pool, config))
    assert second is not first and first.closed  # replaced and closed, not dropped
    asyncio.run(pool.aclose())  # a third loop closes the session of the second
    assert second.closed
