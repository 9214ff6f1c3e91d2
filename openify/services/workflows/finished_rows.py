"""A stored run's end as the engine announced it: for streams of runs this process does not run."""

from __future__ import annotations

import json
from typing import Any

from openify.engine.events import WorkflowFinished
from openify.services.workflows.runs import unix
from openify.storage.tables import WorkflowRun


def run_outputs(row: WorkflowRun) -> dict[str, Any]:
    """A stored run's outputs: none while it runs."""
    if row.status == "running" or not row.outputs:
        return {}
    value = json.loads(row.outputs)
    return value if isinstance(value, dict) else {}


def finished_event(row: WorkflowRun) -> WorkflowFinished:
    """The WorkflowFinished of a run that has ended."""
    created = unix(row.created_at) or 0
    return WorkflowFinished(
        workflow_run_id=row.id,
        status=row.status,  # type: ignore[arg-type]  # a finished run's status is a run status
        outputs=run_outputs(row),
        error=row.error,
        elapsed_time=row.elapsed_time,
        total_tokens=row.total_tokens,
        total_steps=row.total_steps,
        exceptions_count=row.exceptions_count,
        created_at=created,
        finished_at=unix(row.finished_at) or created,
    )
