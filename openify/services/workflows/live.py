"""The live side of a run: its events kept in memory while it runs, relayed to every subscriber.

The run's task publishes; HTTP streams (the starting request, `GET /workflow/{id}/events`) subscribe. A
subscriber that goes away loses nothing: the task neither waits for nor depends on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from openify.engine.events import WorkflowEvent, WorkflowFinished
from openify.engine.runner import WorkflowRun as EngineRun
from openify.storage.tables import WorkflowRun


@dataclass(eq=False)
class LiveRun:
    """One running workflow or chatflow turn, as seen by the API."""

    run_id: str
    task_id: str
    app_id: str
    workflow_id: str
    end_user_id: str
    session_id: str
    run: EngineRun | None  # None for a mirror of a run another process runs (following.py)
    conversation_id: str | None = None
    message_id: str | None = None
    message_created_at: int = 0
    row: WorkflowRun | None = None  # as first stored
    events: list[WorkflowEvent] = field(default_factory=list)
    finished: WorkflowFinished | None = None
    answer_replaced: str | None = None  # a chatflow answer output moderation replaced (message_replace)
    task: asyncio.Task[None] | None = None
    _news: asyncio.Future[None] | None = None  # resolved by the next publish or close; shared by waiters
    _wakers: set[asyncio.Future[None]] = field(default_factory=set)  # waiters the close must wake too
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, event: WorkflowEvent) -> None:
        # Subscribers read `events` through a cursor of their own: publishing is an append, and a wake-up
        # only when someone is waiting (a queue per subscriber cost more than encoding, bench/workflow.py).
        self.events.append(event)
        if type(event) is WorkflowFinished:
            self.finished = event
        if self._news is not None:
            self._wake()

    def close(self) -> None:
        self._done.set()
        self._wake()
        for waker in self._wakers:
            if not waker.done():
                waker.set_result(None)

    def _wake(self) -> None:
        news, self._news = self._news, None
        if news is not None and not news.done():
            news.set_result(None)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def batches(self, replay: bool = True, coalesce_s: float = 0.0) -> AsyncIterator[list[WorkflowEvent]]:
        """Events from the start (`replay`) or from now on, until the run ends, as lists of what has piled up.

        With `coalesce_s`, a batch follows the subscription's start or the batch before by that long at least:
        a run's first events, and the events of fast nodes, gather into one batch (and one socket write), while
        an event after a quiet spell (an LLM token) goes at once. The run's end cuts any wait short."""
        if not replay and self.done:
            if self.finished is not None:  # it ended since the caller looked: the end is still news
                yield [self.finished]
            return
        loop = asyncio.get_running_loop()
        seen = 0 if replay else len(self.events)
        last = loop.time()
        while True:
            # The window first, then news: a run shorter than the window wakes its stream once, at its end.
            # Each wait is one future that a timer or the close resolves, not a timeout that cancels the
            # task: on a run of trivial nodes the stream's wake-ups showed in the run's own time.
            until = last + coalesce_s
            if until > loop.time() and not self.done:
                await self._window(loop, until)
            if seen == len(self.events):
                if self.done:
                    return
                if self._news is None:
                    self._news = loop.create_future()
                await asyncio.shield(self._news)  # one waiter going away must not cancel the others' wake-up
                continue  # after a quiet spell the window has passed: the event goes at once
            batch = self.events[seen:]
            seen += len(batch)
            yield batch
            last = loop.time()

    async def _window(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        """Wait until `until` (loop time) or the run's end, whichever comes first."""
        waker: asyncio.Future[None] = loop.create_future()
        timer = loop.call_at(until, _resolve, waker)
        self._wakers.add(waker)
        try:
            await waker
        finally:
            timer.cancel()
            self._wakers.discard(waker)

    async def wait(self) -> WorkflowFinished:
        """The run's final event (blocking mode folds the same events a stream sends)."""
        await self._done.wait()
        assert self.finished is not None  # noqa: S101 - the driver always publishes one before closing
        return self.finished

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()


def _resolve(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)
