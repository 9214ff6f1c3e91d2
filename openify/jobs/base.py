"""The job runner contract. Jobs are rows in the database; a runner claims them under a lease.

A handler must be idempotent: a job whose worker died (kill, power loss) is claimed again once its
lease expires and runs from the start. Exactly-once *effects* come from `JobContext.finish(session)`,
which marks the job done inside the handler's final transaction only while the claim is still held.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openify.settings import Settings
    from openify.storage.db import Database

from sqlalchemy.orm import Session


class LeaseLost(Exception):
    """The job's claim expired or was taken over; the handler must roll back and stop."""


class JobInterrupted(Exception):
    """The runner is stopping; the handler stops early and the job is claimed again later."""


class JobContext(Protocol):
    """What a running handler may ask of its runner."""

    job_id: str
    attempt: int

    def check(self, session: Session | None = None) -> None:
        """Raise JobInterrupted when the runner stops, LeaseLost when the claim is gone (checked in `session`)."""
        ...

    def finish(self, session: Session) -> None:
        """Mark the job done in `session` (commit it with the handler's last writes); LeaseLost if not held."""
        ...


Handler = Callable[[JobContext, Mapping[str, Any]], None]
GiveUp = Callable[[Mapping[str, Any], str], None]  # (payload, error message): the job failed for good


class JobRunner(Protocol):
    """Runs registered job kinds in the background, durably."""

    def register(self, kind: str, handler: Handler, on_give_up: GiveUp | None = None) -> None:
        """Route jobs of `kind` to `handler`; `on_give_up` records a job that failed for good."""
        ...

    def enqueue(self, kind: str, payload: Mapping[str, Any], session: Session | None = None) -> str:
        """Store a job (in `session`, so it commits with the caller's writes) and return its id."""
        ...

    def start(self) -> None:
        """Start working, resuming jobs left queued or abandoned by a dead worker."""
        ...

    def stop(self) -> None:
        """Stop working; unfinished jobs stay in the database for the next start."""
        ...

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no job is queued or running (True), or the timeout passes (False)."""
        ...


class JobRunnerFactory(Protocol):
    """What `r.job_runners` holds: builds the runner `OPENIFY_JOB_RUNNER` names."""

    def __call__(self, db: Database, settings: Settings) -> JobRunner:
        """A runner storing its jobs in `db`."""
        ...
