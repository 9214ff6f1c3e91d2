"""The default runner: worker threads in the server process, jobs in the database.

Claiming is one conditional UPDATE (`... WHERE id = ? AND claimable`), so two workers, threads or
processes, never hold one job; it works the same on SQLite and PostgreSQL. A heartbeat renews the
leases of held jobs; a job whose lease ran out (its process was killed) is claimed again, up to
`MAX_ATTEMPTS` times, then given up.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

from openify.jobs.base import GiveUp, Handler, JobInterrupted, LeaseLost
from openify.settings import Settings
from openify.storage.db import Database
from openify.storage.tables import Job
from openify.storage.tables.base import utcnow

log = logging.getLogger("openify.jobs")
MAX_ATTEMPTS = 3
POLL_S = 0.5


class _Context:
    def __init__(self, runner: InProcessJobRunner, job_id: str, token: str, attempt: int) -> None:
        self.job_id, self.token, self.attempt, self._runner = job_id, token, attempt, runner
        self.finished = False

    def check(self, session: Session | None = None) -> None:
        if self._runner.stopping.is_set():
            raise JobInterrupted(self.job_id)
        if session is not None:
            held = session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.id == self.job_id, Job.claim_token == self.token, Job.status == "running")
            )
            if not held:
                raise LeaseLost(self.job_id)

    def finish(self, session: Session) -> None:
        done = session.execute(
            update(Job)
            .where(Job.id == self.job_id, Job.claim_token == self.token, Job.status == "running")
            .values(status="done", finished_at=utcnow(), lease_expires_at=None)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            raise LeaseLost(self.job_id)
        self.finished = True


class InProcessJobRunner:
    name = "inprocess"

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._lease = timedelta(seconds=settings.job_lease_s)
        self._workers = max(1, settings.job_workers)
        self._handlers: dict[str, tuple[Handler, GiveUp | None]] = {}
        self._threads: list[threading.Thread] = []
        self._wake = threading.Event()
        self.stopping = threading.Event()
        self._held: dict[str, str] = {}  # job id -> claim token
        self._held_lock = threading.Lock()

    def register(self, kind: str, handler: Handler, on_give_up: GiveUp | None = None) -> None:
        self._handlers[kind] = (handler, on_give_up)

    def enqueue(self, kind: str, payload: Mapping[str, Any], session: Session | None = None) -> str:
        job = Job(id=str(uuid.uuid4()), kind=kind, payload=dict(payload), status="queued", attempts=0)
        if session is None:
            with self._db.session() as s:
                s.add(job)
            self._wake.set()
        else:
            session.add(job)
            event.listen(session, "after_commit", lambda _s: self._wake.set(), once=True)
        return job.id

    def start(self) -> None:
        self.stopping.clear()
        for i in range(self._workers):
            t = threading.Thread(target=self._work, name=f"openify-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        beat = threading.Thread(target=self._heartbeat, name="openify-job-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        # Jobs still held were interrupted: hand them back at once rather than after the lease.
        with self._held_lock:
            held = dict(self._held)
        for job_id, token in held.items():
            self._release(job_id, token)

    def _release(self, job_id: str, token: str) -> None:
        """Hand an interrupted job back at once rather than after its lease."""
        try:
            with self._db.session() as s:
                s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.claim_token == token, Job.status == "running")
                    .values(status="queued", claim_token=None, lease_expires_at=None)
                )
        except Exception:  # the database may be gone at shutdown; the lease covers it
            log.warning("could not release job %s", job_id, exc_info=True)

    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._db.session() as s:
                busy = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
            if not busy:
                return True
            time.sleep(0.05)
        return False

    # --- workers ---------------------------------------------------------------------------------
    def _claimable(self, now: datetime) -> Any:
        return or_(Job.status == "queued", (Job.status == "running") & (Job.lease_expires_at < now))

    def _claim(self) -> tuple[Job, str] | None:
        now = utcnow()
        with self._db.session() as s:
            ids = s.scalars(
                select(Job.id)
                .where(self._claimable(now), Job.kind.in_(list(self._handlers)))
                .order_by(Job.created_at)
                .limit(8)
            ).all()
        for job_id in ids:
            token = str(uuid.uuid4())
            with self._db.session() as s:
                claimed = s.execute(
                    update(Job)
                    .where(Job.id == job_id, self._claimable(now))
                    .values(
                        status="running",
                        claim_token=token,
                        lease_expires_at=now + self._lease,
                        attempts=Job.attempts + 1,
                    )
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]  # another worker won it
                    continue
                job = s.get(Job, job_id)
                assert job is not None  # noqa: S101 - just claimed in this transaction
                s.expunge(job)
            return job, token
        return None

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                claimed = self._claim()
            except Exception:
                log.exception("job claim failed")
                claimed = None
            if claimed is None:
                self._wake.wait(POLL_S)
                self._wake.clear()
                continue
            try:
                self._run(*claimed)
            except Exception:  # a worker thread must outlive any one job (the job's lease covers it)
                log.exception("job %s could not be settled", claimed[0].id)

    def _run(self, job: Job, token: str) -> None:
        handler, give_up = self._handlers[job.kind]
        if job.attempts > MAX_ATTEMPTS:
            self._fail(job, token, give_up, f"gave up after {MAX_ATTEMPTS} interrupted attempts")
            return
        with self._held_lock:
            self._held[job.id] = token
        ctx = _Context(self, job.id, token, job.attempts)
        try:
            handler(ctx, job.payload)
            if not ctx.finished:
                with self._db.session() as s:
                    ctx.finish(s)
        except JobInterrupted:
            log.info("job %s interrupted by shutdown", job.id)
            self._release(job.id, token)
        except LeaseLost:
            log.warning("job %s lost its lease; another worker owns it", job.id)
        except Exception as e:
            log.exception("job %s (%s) failed", job.id, job.kind)
            self._fail(job, token, give_up, f"{type(e).__name__}: {e}")
        finally:
            with self._held_lock:
                self._held.pop(job.id, None)

    def _fail(self, job: Job, token: str, give_up: GiveUp | None, message: str) -> None:
        with self._db.session() as s:
            failed = s.execute(
                update(Job)
                .where(Job.id == job.id, Job.claim_token == token, Job.status == "running")
                .values(status="failed", error=message, finished_at=utcnow(), lease_expires_at=None)
            )
            if failed.rowcount != 1:  # type: ignore[attr-defined]
                return
        if give_up is not None:
            try:
                give_up(job.payload, message)
            except Exception:
                log.exception("give-up hook of job %s failed", job.id)

    def _heartbeat(self) -> None:
        interval = max(0.2, self._lease.total_seconds() / 3)
        while not self.stopping.wait(interval):
            with self._held_lock:
                held = dict(self._held)
            for job_id, token in held.items():
                try:
                    with self._db.session() as s:
                        s.execute(
                            update(Job)
                            .where(Job.id == job_id, Job.claim_token == token, Job.status == "running")
                            .values(lease_expires_at=utcnow() + self._lease)
                        )
                except Exception:
                    log.warning("heartbeat of job %s failed", job_id, exc_info=True)
