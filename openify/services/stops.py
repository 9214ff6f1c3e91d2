"""Stop requests that reach the task in whichever server process runs it.

Behind a load balancer, `POST .../stop` lands on any process, and the task may run in another. With
`OPENIFY_REDIS_URL` set, a stop is applied here and also published on one Redis channel; every process listens
and applies the stops it hears to its own tasks, with the same ownership checks as a local stop. Dify sets a
Redis flag that the generating worker polls; a channel needs no polling. A stop for a task no process runs is
a no-op, as in Dify. Without a Redis URL, stops are local, which is all one process needs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("openify.stops")

CHANNEL = "openify:stops"
RETRY_S = 1.0  # between attempts to listen again after Redis went away
PUBLISH_TIMEOUT_S = 2.0  # a stop request waits no longer on an unreachable Redis

StopKind = Literal["workflow", "chat", "chatflow"]


class TaskStop(msgspec.Struct, frozen=True):
    kind: StopKind
    app_id: str
    user: str | None
    task_id: str
    origin: str = ""  # the publishing process, which has applied it already


Apply = Callable[[TaskStop], Awaitable[None]]


class StopRelay:
    def __init__(self, redis_url: str | None, apply: Apply) -> None:
        self._url = redis_url
        self._apply = apply
        self._origin = uuid.uuid4().hex
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe before the server takes requests, so no stop published afterwards is missed. A Redis that
        is down does not keep the server from starting: stops are local until it answers."""
        if not self._url:
            return
        self._client = aioredis.from_url(self._url, socket_connect_timeout=PUBLISH_TIMEOUT_S)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        subscribed = True
        try:
            await self._pubsub.subscribe(CHANNEL)
        except RedisError:
            log.error("Redis at OPENIFY_REDIS_URL is unreachable; stops stay local until it answers", exc_info=True)
            subscribed = False
        self._listener = asyncio.create_task(self._listen(self._pubsub, subscribed), name="openify-stop-relay")

    async def stop(self, request: TaskStop) -> None:
        await self._apply(request)
        if self._client is None:
            return
        message = msgspec.json.encode(msgspec.structs.replace(request, origin=self._origin))
        try:
            await asyncio.wait_for(self._client.publish(CHANNEL, message), PUBLISH_TIMEOUT_S)
        except (RedisError, TimeoutError):
            log.warning("stop of task %s not relayed: Redis is unreachable", request.task_id, exc_info=True)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def _listen(self, pubsub: Any, subscribed: bool) -> None:
        decode = msgspec.json.Decoder(TaskStop).decode
        while True:
            try:
                if not subscribed:
                    await pubsub.subscribe(CHANNEL)
                    subscribed = True
                async for message in pubsub.listen():
                    try:
                        request = decode(message["data"])
                    except msgspec.DecodeError:
                        log.warning("ignored a malformed message on %s", CHANNEL)
                        continue
                    if request.origin == self._origin:
                        continue
                    try:
                        await self._apply(request)
                    except Exception:  # one bad stop must not end the listening
                        log.exception("applying a relayed stop of task %s failed", request.task_id)
                subscribed = False  # the subscription ended without an error: take it again
                await asyncio.sleep(RETRY_S)
            except RedisError:
                log.warning("stop relay lost Redis; listening again in %.0f s", RETRY_S, exc_info=True)
                subscribed = False
                await asyncio.sleep(RETRY_S)
