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

_END = None


@dataclass(eq=False)
class LiveRun:
    """One running workflow or chatflow turn, as seen by the API."""

    run_id: str
    task_id: str
    app_id: str
    workflow_id: str
    end_user_id: str
    session_id: str
    run: EngineRun
    conversation_id: str | None = None
    message_id: str | None = None
    message_created_at: int = 0
    row: WorkflowRun | None = None  # as first stored
    events: list[WorkflowEvent] = field(default_factory=list)
    finished: WorkflowFinished | None = None
    task: asyncio.Task[None] | None = None
    _queues: list[asyncio.Queue[WorkflowEvent | None]] = field(default_factory=list)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, event: WorkflowEvent) -> None:
        self.events.append(event)
        if type(event) is WorkflowFinished:
            self.finished = event
        for q in self._queues:
            q.put_nowait(event)

    def close(self) -> None:
        self._done.set()
        for q in self._queues:
            q.put_nowait(_END)
        self._queues.clear()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def subscribe(self, replay: bool = True, coalesce_s: float = 0.0) -> AsyncIterator[WorkflowEvent]:
        """Events from the start (`replay`) or from now on, until the run ends. With `coalesce_s`, after waiting
        for an event the subscriber lets the run go on that long, so the events of fast nodes reach it together."""
        q: asyncio.Queue[WorkflowEvent | None] = asyncio.Queue()
        if replay:
            for ev in self.events:
                q.put_nowait(ev)
        elif self.done and self.finished is not None:
            q.put_nowait(self.finished)  # it ended since the caller looked: the end is still news
        if self.done:
            q.put_nowait(_END)
        else:
            self._queues.append(q)
        try:
            while True:
                if q.empty() and coalesce_s > 0 and not self.done:
                    item = await q.get()
                    await asyncio.sleep(coalesce_s)
                else:
                    item = await q.get()
                if item is None:
                    return
                yield item
        finally:
            if q in self._queues:
                self._queues.remove(q)

    async def wait(self) -> WorkflowFinished:
        """The run's final event (blocking mode folds the same events a stream sends)."""
        await self._done.wait()
        assert self.finished is not None  # noqa: S101 - the driver always publishes one before closing
        return self.finished

    def stop(self) -> None:
        self.run.stop()
