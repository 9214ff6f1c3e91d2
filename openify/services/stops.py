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
from typing import Literal

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from openify.services.redis_channels import TIMEOUT_S, ChannelListener, client

log = logging.getLogger("openify.stops")

CHANNEL = "openify:stops"

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
        self._listener: ChannelListener | None = None
        self._decode = msgspec.json.Decoder(TaskStop).decode

    async def start(self) -> None:
        """Listen for stops published by other processes; without a Redis URL, stops are local."""
        if not self._url:
            return
        self._client = client(self._url)
        self._listener = ChannelListener(self._client, CHANNEL, self._heard, "the stop relay")
        await self._listener.start()

    async def stop(self, request: TaskStop) -> None:
        await self._apply(request)
        if self._client is None:
            return
        message = msgspec.json.encode(msgspec.structs.replace(request, origin=self._origin))
        try:
            await asyncio.wait_for(self._client.publish(CHANNEL, message), TIMEOUT_S)
        except (RedisError, TimeoutError):
            log.warning("stop of task %s not relayed: Redis is unreachable", request.task_id, exc_info=True)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        if self._client is not None:
            await self._client.aclose()

    async def _heard(self, data: bytes) -> None:
        try:
            request = self._decode(data)
        except msgspec.DecodeError:
            log.warning("ignored a malformed message on %s", CHANNEL)
            return
        if request.origin != self._origin:
            await self._apply(request)
