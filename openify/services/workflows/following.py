"""Following a run that another server process runs, over Redis.

Behind a load balancer, `GET /workflow/{id}/events` may land on a process that does not run the run. With
`OPENIFY_REDIS_URL` set, that process subscribes to a channel of its own and asks on FOLLOW_CHANNEL; the process
running the run answers there with the run's keys and how many events it had published, then relays every
event from the run's start as they come. The follower mirrors them into a LiveRun, which streams exactly as a
local one does: node events, text chunks, a chatflow's message events and its end. Dify's resume reads the
run's events from Redis too.

No answer within HELLO_TIMEOUT_S (no process that hears runs it, or Redis is down): the caller falls back to
the stored rows (api/stored_runs.py). Should the running process die, its run's row ends as failed
(services/instances.py); a follower that has heard nothing for QUIET_CHECK_S reads the row, and ends the mirror
with the row's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any, get_args

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from openify.engine.events import WorkflowEvent, WorkflowFinished, as_json_object
from openify.services.redis_channels import TIMEOUT_S, ChannelListener, client
from openify.services.workflows.finished_rows import finished_event
from openify.services.workflows.live import LiveRun
from openify.services.workflows.runs import WorkflowRunService

log = logging.getLogger("openify.following")

FOLLOW_CHANNEL = "openify:follow"
HELLO_TIMEOUT_S = 1.0  # how long a follower waits for the running process to answer
READY_TIMEOUT_S = 5.0  # and then for the events published before it asked
QUIET_CHECK_S = 2.0  # after this long without a message, the follower reads the run's row
RELAY_COALESCE_S = 0.005  # the relay gathers a fast run's events as a stream does (api/workflow_events.py)
EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(WorkflowEvent)}


class FollowRequest(msgspec.Struct, frozen=True):
    run_id: str
    reply_to: str


class RunKeys(msgspec.Struct, frozen=True):
    """What a LiveRun holds besides its events."""

    run_id: str
    task_id: str
    app_id: str
    workflow_id: str
    end_user_id: str
    session_id: str
    conversation_id: str | None
    message_id: str | None
    message_created_at: int


class Hello(msgspec.Struct, frozen=True, tag="hello"):
    keys: RunKeys
    published: int  # events the run had published when asked


class Batch(msgspec.Struct, frozen=True, tag="batch"):
    events: list[tuple[str, msgspec.Raw]]  # (event type, the event)


_encode = msgspec.json.Encoder(enc_hook=as_json_object).encode
_decode_message = msgspec.json.Decoder(Hello | Batch).decode


def _batch(events: Sequence[WorkflowEvent]) -> bytes:
    return _encode(Batch([(type(ev).__name__, msgspec.Raw(_encode(ev))) for ev in events]))


async def next_message(pubsub: Any, timeout_s: float) -> dict[str, Any] | None:
    """The next message published on `pubsub`'s channels within `timeout_s`, or None. (redis-py's get_message
    also answers None at once for a subscription's confirmation, which is not the wait's end.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (left := deadline - loop.time()) > 0:
        message: dict[str, Any] | None = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            return message
    return None


class Followed:
    """A run followed from another process: `live` mirrors it until it ends or `aclose()`."""

    def __init__(self, live: LiveRun, pubsub: Any, runs: WorkflowRunService) -> None:
        self.live, self._pubsub, self._runs = live, pubsub, runs
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, published: int) -> None:
        self._task = asyncio.create_task(self._pump(published), name=f"openify-follow-{self.live.run_id}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._caught_up.wait(), READY_TIMEOUT_S)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError):
            await self._pubsub.aclose()

    async def _pump(self, published: int) -> None:
        try:
            await self._follow(published)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database failing, say: end the stream rather than leave it open with no events
            log.exception("following run %s failed", self.live.run_id)
            self.live.close()
        finally:
            self._caught_up.set()

    async def _follow(self, published: int) -> None:
        live = self.live
        decoders = {name: msgspec.json.Decoder(cls).decode for name, cls in EVENT_TYPES.items()}
        try:
            while not live.done:
                if len(live.events) >= published:
                    self._caught_up.set()
                try:
                    message = await next_message(self._pubsub, QUIET_CHECK_S)
                except RedisError:
                    log.warning("lost Redis while following run %s; following its row", live.run_id, exc_info=True)
                    await self._until_row_ends()
                    return
                if message is None:
                    if not await self._row_running():
                        return
                    continue
                got = _decode_message(message["data"])
                if not isinstance(got, Batch):
                    continue
                for name, raw in got.events:
                    ev = decoders[name](raw)
                    live.publish(ev)
                    if type(ev) is WorkflowFinished:
                        live.close()
                        return
        except (msgspec.DecodeError, KeyError):
            log.exception("a malformed relay of run %s; following its row", live.run_id)
            await self._until_row_ends()

    async def _until_row_ends(self) -> None:
        while await self._row_running():
            await asyncio.sleep(QUIET_CHECK_S)

    async def _row_running(self) -> bool:
        """Whether the run's row is still running; if it has ended, the mirror ends with it."""
        row = await asyncio.to_thread(self._runs.get_run, self.live.app_id, self.live.run_id)
        if row.status == "running":
            return True
        self.live.publish(finished_event(row))
        self.live.close()
        return False


class RunFollowing:
    def __init__(self, redis_url: str | None, runs: WorkflowRunService) -> None:
        self._url, self._runs = redis_url, runs
        self._client: aioredis.Redis | None = None
        self._listener: ChannelListener | None = None
        self._relays: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if not self._url:
            return
        self._client = client(self._url)
        self._listener = ChannelListener(self._client, FOLLOW_CHANNEL, self._asked, "run following")
        await self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # --- the process that runs the run ----------------------------------------------------------------------
    async def _asked(self, data: bytes) -> None:
        try:
            request = msgspec.json.decode(data, type=FollowRequest)
        except msgspec.DecodeError:
            log.warning("ignored a malformed message on %s", FOLLOW_CHANNEL)
            return
        live = self._runs.live(request.run_id)
        if live is None or live.done:  # not ours; or over, and its stored end says so
            return
        task = asyncio.create_task(self._relay(live, request.reply_to), name=f"openify-relay-{live.run_id}")
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _relay(self, live: LiveRun, channel: str) -> None:
        assert self._client is not None  # noqa: S101 - only a listening process is asked
        keys = RunKeys(**{name: getattr(live, name) for name in RunKeys.__struct_fields__})
        try:
            await self._client.publish(channel, _encode(Hello(keys, len(live.events))))
            async for batch in live.batches(replay=True, coalesce_s=RELAY_COALESCE_S):
                if not await self._client.publish(channel, _batch(batch)):
                    return  # nobody listens any more: the follower's client has gone
        except RedisError:
            log.warning("relaying run %s stopped: Redis is unreachable", live.run_id, exc_info=True)

    # --- a process that does not -----------------------------------------------------------------------------
    async def follow(self, run_id: str) -> Followed | None:
        """A mirror of a run that another process runs, caught up with what it had published; None when no
        process answers (or there is no Redis)."""
        if self._client is None:
            return None
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        channel = f"{FOLLOW_CHANNEL}:{uuid.uuid4().hex}"
        hello: Hello | None = None
        try:
            await asyncio.wait_for(pubsub.subscribe(channel), TIMEOUT_S)
            await asyncio.wait_for(
                self._client.publish(FOLLOW_CHANNEL, _encode(FollowRequest(run_id, channel))), TIMEOUT_S
            )
            message = await next_message(pubsub, HELLO_TIMEOUT_S)
            got = _decode_message(message["data"]) if message is not None else None
            hello = got if isinstance(got, Hello) else None
        except (RedisError, TimeoutError, msgspec.DecodeError):
            log.warning("following run %s over Redis failed", run_id, exc_info=True)
        if hello is None:
            with contextlib.suppress(RedisError):
                await pubsub.aclose()
            return None
        live = LiveRun(**msgspec.structs.asdict(hello.keys), run=None)
        followed = Followed(live, pubsub, self._runs)
        await followed.start(hello.published)
        return followed
