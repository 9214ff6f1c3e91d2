"""Group commit for run records: the writes of every live run, one transaction per trip to the database.

Sixty concurrent runs each storing a row, their nodes and their end would otherwise mean sixty threads'
worth of small transactions fighting over the GIL and SQLite's single writer; batched, they are a few.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.engine import Connection

from openify.storage.db import Database

log = logging.getLogger("openify.workflows")

Write = Callable[[Connection], None]


class BatchWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[Write, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def write(self, fn: Write) -> None:
        """Run `fn` in a transaction shared with whatever else is waiting; returns once committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        await asyncio.shield(future)  # a caller that goes away does not take the others' write with it

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._run, [fn for fn, _ in batch])
            except Exception:
                # One bad write must not fail its neighbours: retry each alone.
                for fn, future in batch:
                    try:
                        await asyncio.to_thread(self._run, [fn])
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _run(self, writes: list[Write]) -> None:
        with self._db.engine.begin() as conn:
            for fn in writes:
                fn(conn)
