"""The in-process job runner on the real databases: claims are exclusive, abandoned jobs resume after
their lease, a worker that lost its claim cannot finish the job, and poison jobs are given up."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update

from openify.jobs.base import JobContext
from openify.jobs.inprocess import MAX_ATTEMPTS, InProcessJobRunner
from openify.settings import Settings
from openify.storage.db import Database
from openify.storage.tables import Job
from openify.storage.tables.base import utcnow


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.sqlalchemy_url)
    database.upgrade()
    yield database
    database.dispose()


def _runner(db: Database, settings: Settings, workers: int = 2, lease_s: float = 30.0) -> InProcessJobRunner:
    return InProcessJobRunner(db, settings.model_copy(update={"job_workers": workers, "job_lease_s": lease_s}))


def _jobs(db: Database) -> list[Job]:
    with db.session() as s:
        return list(s.scalars(select(Job).order_by(Job.created_at)))


def test_competing_runners_run_each_job_once(db: Database, settings: Settings) -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def handler(ctx: JobContext, payload: Mapping[str, Any]) -> None:
        time.sleep(0.01)
        with lock:
            ran.append(str(payload["n"]))

    runners = [_runner(db, settings), _runner(db, settings)]  # two processes' worth of workers
    for r in runners:
        r.register("count", handler)
    ids = [runners[0].enqueue("count", {"n": i}) for i in range(30)]
    for r in runners:
        r.start()
    try:
        assert runners[0].wait_idle(30)
    finally:
        for r in runners:
            r.stop()
    assert sorted(ran, key=int) == [str(i) for i in range(30)]  # each exactly once
    jobs = {j.id: j for j in _jobs(db)}
    assert all(jobs[i].status == "done" and jobs[i].attempts == 1 and jobs[i].finished_at for i in ids)


def test_job_enqueued_in_a_rolled_back_transaction_never_runs(db: Database, settings: Settings) -> None:
    runner = _runner(db, settings)
    runner.register("x", lambda _ctx, _p: None)
    with pytest.raises(RuntimeError), db.session() as s:
        runner.enqueue("x", {}, session=s)
        raise RuntimeError("the caller's write failed")
    assert _jobs(db) == []


def test_abandoned_job_resumes_after_its_lease(db: Database, settings: Settings) -> None:
    """A row left `running` by a killed worker is claimed again once the lease has run out, not before."""
    job_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(
            Job(
                id=job_id,
                kind="k",
                payload={},
                status="running",
                attempts=1,
                claim_token="dead-worker",
                lease_expires_at=utcnow() + timedelta(seconds=1.5),
            )
        )
    done = threading.Event()
    runner = _runner(db, settings, workers=1)
    runner.register("k", lambda _ctx, _p: done.set())
    runner.start()
    try:
        assert not done.wait(0.8)  # the lease still holds
        assert done.wait(10)
        assert runner.wait_idle(10)
    finally:
        runner.stop()
    (job,) = _jobs(db)
    assert job.status == "done" and job.attempts == 2


def test_worker_that_lost_its_claim_cannot_finish(db: Database, settings: Settings) -> None:
    started, go_on = threading.Event(), threading.Event()
    errors: list[str] = []

    def handler(ctx: JobContext, payload: Mapping[str, Any]) -> None:
        started.set()
        go_on.wait(10)
        try:
            with db.session() as s:
                s.execute(
                    sa.text("UPDATE jobs SET error = 'written by the old owner' WHERE id = :id"), {"id": ctx.job_id}
                )
                ctx.finish(s)
        except Exception as e:
            errors.append(type(e).__name__)
            raise

    runner = _runner(db, settings, workers=1)
    runner.register("k", handler)
    job_id = runner.enqueue("k", {})
    runner.start()
    try:
        assert started.wait(10)
        with db.session() as s:  # another worker took the job over
            s.execute(update(Job).where(Job.id == job_id).values(claim_token="someone-else"))
        go_on.set()
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert errors == ["LeaseLost"]
    (job,) = _jobs(db)
    assert job.status == "running" and job.claim_token == "someone-else" and job.error is None  # rolled back


def test_poison_job_is_given_up(db: Database, settings: Settings) -> None:
    given_up: list[tuple[Mapping[str, Any], str]] = []
    with db.session() as s:
        s.add(
            Job(
                id=str(uuid.uuid4()),
                kind="k",
                payload={"doc": "d1"},
                status="running",
                attempts=MAX_ATTEMPTS,
                claim_token="dead",
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    runner = _runner(db, settings, workers=1)
    ran: list[int] = []
    runner.register("k", lambda _ctx, _p: ran.append(1), on_give_up=lambda p, m: given_up.append((p, m)))
    runner.start()
    try:
        assert runner.wait_idle(10)
    finally:
        runner.stop()
    (job,) = _jobs(db)
    assert job.status == "failed" and "gave up" in (job.error or "") and ran == []
    assert given_up and given_up[0][0] == {"doc": "d1"}


def test_failing_handler_marks_the_job_failed(db: Database, settings: Settings) -> None:
    given_up: list[str] = []

    def boom(ctx: JobContext, payload: Mapping[str, Any]) -> None:
        raise ValueError("bad payload")

    runner = _runner(db, settings, workers=1)
    runner.register("k", boom, on_give_up=lambda _p, m: given_up.append(m))
    runner.enqueue("k", {})
    runner.start()
    try:
        assert runner.wait_idle(10)
    finally:
        runner.stop()
    (job,) = _jobs(db)
    assert job.status == "failed" and job.error == "ValueError: bad payload" and given_up == [job.error]


def test_stop_hands_running_jobs_back(db: Database, settings: Settings) -> None:
    started = threading.Event()

    def slow(ctx: JobContext, payload: Mapping[str, Any]) -> None:
        started.set()
        while True:
            ctx.check()  # raises JobInterrupted once the runner stops
            time.sleep(0.01)

    runner = _runner(db, settings, workers=1)
    runner.register("k", slow)
    runner.enqueue("k", {})
    runner.start()
    assert started.wait(10)
    runner.stop()
    (job,) = _jobs(db)
    assert job.status == "queued" and job.claim_token is None  # the next start resumes it at once
    again = _runner(db, settings, workers=1)
    again.register("k", lambda _ctx, _p: None)
    again.start()
    try:
        assert again.wait_idle(10)
    finally:
        again.stop()
    assert _jobs(db)[0].status == "done" and _jobs(db)[0].attempts == 2
