"""Built-in job runners (a plugin module: `register(r)`); `r.job_runners` holds `(db, settings) -> JobRunner`."""

from __future__ import annotations

from openify.jobs.inprocess import InProcessJobRunner
from openify.registry import Registries


def register(r: Registries) -> None:
    r.job_runners.register(InProcessJobRunner.name, InProcessJobRunner)
