"""The server processes sharing one database, so that one never fails another's running work.

Each process registers a row and beats every third of a lease; the runs and messages it starts carry its id.
A process that is gone (no beat for a lease or, on this host, a pid that no longer runs, so a server killed and
started again is seen at once) is forgotten, and the recoverers fail the running work of every owner that is
not alive: at a server's start, at each beat that finds one gone, and for a server's own work when it stops.
Rows with no owner, from before owners were stored, count as interrupted, as every running row used to at a
start.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta

from sqlalchemy import delete, select, update

from openify.storage.db import Database
from openify.storage.tables import ServerInstance
from openify.storage.tables.base import utcnow

log = logging.getLogger("openify.instances")

INSTANCE_ID = str(uuid.uuid4())  # this process


def _host() -> str:
    """Where a pid means this process's pids: the host name and, on Linux, the pid namespace (containers on one
    host may share its name, but not their pids)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()[:255]


HOST = _host()

Recoverer = Callable[[Collection[str]], int]  # fails the running work whose owner is not among these ids


def _pid_runs(pid: int) -> bool:
    if pid == os.getpid():  # another instance with our pid: this host's previous server (a container restart)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


class Instances:
    def __init__(self, db: Database, lease_s: float, recoverers: Sequence[Recoverer]) -> None:
        self._db = db
        self._lease = timedelta(seconds=lease_s)
        self._recoverers = recoverers
        self._stopping = threading.Event()
        self._beater: threading.Thread | None = None

    def start(self) -> None:
        """Register, fail what gone processes (and no one) left running, then beat in the background."""
        self._register()
        self.sweep(starting=True)
        self._beater = threading.Thread(target=self._beat_forever, name="openify-instance-beat", daemon=True)
        self._beater.start()

    def stop(self) -> None:
        """Stop beating, fail what this process still runs (its tasks end with the server) and leave."""
        self._stopping.set()
        if self._beater is not None:
            self._beater.join(timeout=5)
        others = [i for i in self._instances() if i != INSTANCE_ID]
        for recover in self._recoverers:
            recover(others)
        with self._db.engine.begin() as conn:
            conn.execute(delete(ServerInstance).where(ServerInstance.id == INSTANCE_ID))

    def sweep(self, starting: bool = False) -> list[str]:
        """Forget the processes that are gone and fail the running work of owners not alive; returns the gone."""
        gone = self._gone()
        if gone:
            with self._db.engine.begin() as conn:
                conn.execute(delete(ServerInstance).where(ServerInstance.id.in_(gone)))
            log.warning("server process(es) %s are gone; their running work is failed", ", ".join(gone))
        if gone or starting:
            alive = self._instances()
            for recover in self._recoverers:
                recover(alive)
        return gone

    def _instances(self) -> list[str]:
        with self._db.engine.connect() as conn:
            return list(conn.execute(select(ServerInstance.id)).scalars())

    def _gone(self) -> list[str]:
        now = utcnow()
        with self._db.engine.connect() as conn:
            rows = conn.execute(
                select(ServerInstance.id, ServerInstance.host, ServerInstance.pid, ServerInstance.expires_at).where(
                    ServerInstance.id != INSTANCE_ID
                )
            ).all()
        # Each instance is judged by its own lease, which its row's expiry carries.
        return [r.id for r in rows if r.expires_at < now or (r.host == HOST and not _pid_runs(r.pid))]

    def _register(self) -> None:
        now = utcnow()
        with self._db.engine.begin() as conn:
            conn.execute(delete(ServerInstance).where(ServerInstance.id == INSTANCE_ID))
            conn.execute(
                ServerInstance.__table__.insert().values(  # type: ignore[attr-defined]  # declared tables are Tables
                    id=INSTANCE_ID, host=HOST, pid=os.getpid(), started_at=now, expires_at=now + self._lease
                )
            )

    def _beat(self) -> None:
        with self._db.engine.begin() as conn:
            found = conn.execute(
                update(ServerInstance).where(ServerInstance.id == INSTANCE_ID).values(expires_at=utcnow() + self._lease)
            ).rowcount
        if not found:  # taken for gone (this process stalled for a lease): its running work may have been failed
            log.error("this server process was taken for gone by another; registering again")
            self._register()

    def _beat_forever(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._stopping.wait(interval):
            try:
                self._beat()
                self.sweep()
            except Exception:  # the database may be away for a moment; the next beat tries again
                log.exception("server instance heartbeat failed")
