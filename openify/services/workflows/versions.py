"""Published workflow versions: an app's `workflow` block is its published version, one row per distinct graph."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from openify.errors import BadRequest, NotFound
from openify.storage.db import Database
from openify.storage.tables import App, WorkflowVersion
from openify.storage.tables.base import utcnow


def graph_hash(workflow: dict[str, Any]) -> str:
    text = json.dumps(workflow, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class WorkflowVersions:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_hash: dict[tuple[str, str], WorkflowVersion] = {}
        self._by_app: dict[tuple[str, object], WorkflowVersion] = {}  # (app id, updated_at): skips hashing
        self._by_id: dict[tuple[str, str], WorkflowVersion] = {}

    def find_cached(self, app: App, workflow_id: str | None) -> WorkflowVersion | None:
        """The version from memory when it was seen before (no database, no hashing), else None."""
        found = self._by_app.get((app.id, app.updated_at))
        if workflow_id is None or found is None:
            return found
        return self._by_id.get((app.id, workflow_id))

    def published(self, app: App) -> WorkflowVersion:
        """The version row of the app's current graph, created on first use."""
        cached = self._by_app.get((app.id, app.updated_at))
        if cached is not None:
            return cached
        workflow = app.workflow or {}
        key = (app.id, graph_hash(workflow))
        found = self._by_hash.get(key)
        if found is not None:
            return found
        with self._db.session() as s:
            found = s.scalar(
                select(WorkflowVersion).where(WorkflowVersion.app_id == app.id, WorkflowVersion.graph_hash == key[1])
            )
        if found is None:
            try:
                with self._db.session() as s:
                    found = WorkflowVersion(app_id=app.id, version=str(utcnow()), graph_hash=key[1], workflow=workflow)
                    s.add(found)
            except IntegrityError:  # created by a concurrent first run
                with self._db.session() as s:
                    found = s.scalars(
                        select(WorkflowVersion).where(
                            WorkflowVersion.app_id == app.id, WorkflowVersion.graph_hash == key[1]
                        )
                    ).one()
        self._by_hash[key] = self._by_app[(app.id, app.updated_at)] = found
        return found

    def get(self, app: App, workflow_id: str) -> WorkflowVersion:
        """A published version of this app by id, with Dify's errors for drafts and unknown ids."""
        if workflow_id == "draft":
            raise BadRequest(
                f"Cannot use draft workflow version. Workflow ID: {workflow_id}. "
                "Please use a published workflow version or leave workflow_id empty."
            )
        try:
            uuid.UUID(workflow_id)
        except ValueError:
            raise BadRequest(f"Invalid workflow_id format: {workflow_id}") from None
        self.published(app)  # an app imported before its first run has its version too
        with self._db.session() as s:
            found = s.get(WorkflowVersion, workflow_id)
        if found is None or found.app_id != app.id:
            raise NotFound(f"Workflow not found with id: {workflow_id}")
        self._by_id[(app.id, workflow_id)] = found
        return found
