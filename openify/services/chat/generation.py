"""A running generation: a task that calls the model, stores as it goes, and logs typed events that any number of
readers follow. A reader that goes away (a dropped SSE client) loses nothing: the task finishes and stores."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from openify.errors import InternalServerError, OpenifyError
from openify.providers.base import Usage
from openify.services.chat.events import (
    AgentMessageDelta,
    AgentThought,
    ChatEvent,
    GenerationError,
    MessageDelta,
    MessageEnd,
)

log = logging.getLogger("openify.chat")

SAVE_EVERY_S = 2.0  # a long answer is written to the database this often while it streams


@dataclass
class Generation:
    """One turn being generated. `events` is the append-only log; `done` is set after the final event."""

    task_id: str
    message_id: str
    conversation_id: str
    app_id: str
    end_user_id: str
    mode: str
    created_at: int
    events: list[ChatEvent] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    stopped: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _readers: list[asyncio.Queue[ChatEvent | None]] = field(default_factory=list)
    _work: asyncio.Task[Any] | None = None

    def emit(self, event: ChatEvent) -> None:
        self.events.append(event)
        if isinstance(event, MessageDelta | AgentMessageDelta):
            self.answer.append(event.answer)
        for q in self._readers:
            q.put_nowait(event)

    def close(self) -> None:
        self.done.set()
        for q in self._readers:
            q.put_nowait(None)

    async def follow(self) -> AsyncIterator[ChatEvent]:
        """Every event from the first, then live ones until the end."""
        q: asyncio.Queue[ChatEvent | None] = asyncio.Queue()
        for past in self.events:
            q.put_nowait(past)
        if self.done.is_set():
            q.put_nowait(None)
        else:
            self._readers.append(q)
        try:
            while True:
                event = await q.get()
                if event is None:
                    return
                yield event
        finally:
            if q in self._readers:
                self._readers.remove(q)

    async def wait(self) -> list[ChatEvent]:
        await self.done.wait()
        return self.events

    def stop(self) -> None:
        """End the model call now; the run stores the partial answer and ends with a normal message_end."""
        self.stopped = True
        if self._work is not None and not self._work.done():
            self._work.cancel()

    async def guard(self, work: Awaitable[Any]) -> bool:
        """Run the model part; True when it was cut short by `stop()`."""
        self._work = asyncio.ensure_future(work)
        try:
            await self._work
        except asyncio.CancelledError:
            if not self.stopped:
                raise
            return True
        finally:
            self._work = None
        return self.stopped


class StopRegistry:
    """Running generations by task id, so `POST …/{task_id}/stop` finds them. In-process: one server process."""

    def __init__(self) -> None:
        self._running: dict[str, Generation] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, gen: Generation, run: Callable[[Generation], Awaitable[None]]) -> None:
        self._running[gen.task_id] = gen

        async def main() -> None:
            try:
                await run(gen)
            finally:
                self._running.pop(gen.task_id, None)

        task = asyncio.create_task(main(), name=f"generation {gen.task_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def background(self, work: Awaitable[Any], name: str) -> None:
        """Keep a reference to off-path work (naming) until it ends."""

        async def main() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(main(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._running

    def stop(self, task_id: str, end_user_id: str, app_id: str) -> None:
        """Stop a generation of this end user; anyone else's task id is silently ignored, as in Dify."""
        gen = self._running.get(task_id)
        if gen is not None and gen.end_user_id == end_user_id and gen.app_id == app_id:
            gen.stop()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Let running generations finish (server shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)


def as_error(exc: BaseException) -> OpenifyError:
    if isinstance(exc, OpenifyError):
        return exc
    log.error("generation failed", exc_info=exc)
    return InternalServerError()


@dataclass
class Outcome:
    """What a finished turn stores."""

    answer: str
    usage: Usage
    status: str = "normal"
    error: str | None = None
    thoughts: list[dict[str, Any]] = field(default_factory=list)


def thought_record(t: AgentThought, message_id: str, created_at: int) -> dict[str, Any]:
    return {
        "id": t.id,
        "chain_id": None,
        "message_id": message_id,
        "position": t.position,
        "thought": t.thought,
        "tool": t.tool,
        "tool_labels": dict(t.tool_labels),
        "tool_input": t.tool_input,
        "observation": t.observation,
        "files": list(t.message_files),
        "created_at": created_at,
    }


def final_events(gen: Generation) -> tuple[MessageEnd | None, GenerationError | None]:
    end = next((e for e in reversed(gen.events) if isinstance(e, MessageEnd)), None)
    err = next((e for e in reversed(gen.events) if isinstance(e, GenerationError)), None)
    return end, err


def monotonic() -> float:
    return time.monotonic()
