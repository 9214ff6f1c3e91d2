"""Redis pub/sub channels that server processes talk over (stops, following runs): a channel this process
listens on, kept through Redis going away and coming back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("openify.redis")

RETRY_S = 1.0  # the first wait before listening again after Redis went away
MAX_RETRY_S = 8.0  # the longest, while it stays away
TIMEOUT_S = 2.0  # a request to an unreachable Redis waits no longer

Handle = Callable[[bytes], Awaitable[None]]


def client(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, socket_connect_timeout=TIMEOUT_S)


class ChannelListener:
    """Hands every message on one channel to `handle`. It subscribes before the server takes requests, so
    nothing published afterwards is missed; a Redis that is down does not keep the server from starting."""

    def __init__(self, redis: aioredis.Redis, channel: str, handle: Handle, what: str) -> None:
        self._redis, self.channel, self._handle, self._what = redis, channel, handle, what
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        subscribed = True
        try:
            await self._pubsub.subscribe(self.channel)
        except RedisError:
            log.error("Redis at OPENIFY_REDIS_URL is unreachable; %s waits for it", self._what, exc_info=True)
            subscribed = False
        self._task = asyncio.create_task(self._listen(subscribed), name=f"openify-{self.channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._pubsub is not None:
            await self._pubsub.aclose()

    async def _listen(self, subscribed: bool) -> None:
        # While Redis stays down, attempts back off to MAX_RETRY_S and the failure is logged once, with its
        # traceback, not at every attempt: a log line a second per channel buried everything else.
        delay, failing = RETRY_S, not subscribed
        while True:
            try:
                if not subscribed:
                    await self._pubsub.subscribe(self.channel)
                    subscribed = True
                    if failing:
                        log.warning("%s: Redis answers again", self._what)
                    delay, failing = RETRY_S, False
                async for message in self._pubsub.listen():
                    try:
                        await self._handle(message["data"])
                    except Exception:  # one bad message must not end the listening
                        log.exception("%s: handling a message failed", self._what)
                subscribed = False  # the subscription ended without an error: take it again
                await asyncio.sleep(RETRY_S)
            except RedisError:
                if not failing:
                    log.warning(
                        "%s lost Redis; trying again, at most every %.0f s", self._what, MAX_RETRY_S, exc_info=True
                    )
                    failing = True
                subscribed = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
