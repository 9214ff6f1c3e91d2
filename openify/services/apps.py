"""Apps: import from DSL, export, list, delete."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from openify.errors import NotFound
from openify.services.dsl import AppDefinition, NodeTypeCheck, export_dsl, parse_dsl
from openify.storage.db import Database
from openify.storage.tables import App


@dataclass(frozen=True)
class AppSummary:
    id: str
    name: str
    mode: str
    description: str


def definition_of(app: App) -> AppDefinition:
    return AppDefinition(
        mode=app.mode,
        name=app.name,
        description=app.description,
        icon_type=app.icon_type,
        icon=app.icon,
        icon_background=app.icon_background,
        use_icon_as_answer_icon=app.use_icon_as_answer_icon,
        dsl_version=app.dsl_version,
        model_config=app.model_config_,
        workflow=app.workflow,
        dependencies=list(app.dependencies or []),
    )


class AppService:
    _CACHE_TTL_S = 5.0  # bounds how long another process may serve a deleted app

    def __init__(self, db: Database, is_node_type_supported: NodeTypeCheck) -> None:
        self._db = db
        self._node_check = is_node_type_supported
        # Every Service API request reads its app; the row changes only by import/delete.
        self._cache: dict[str, tuple[float, App]] = {}

    def import_dsl(self, text: str | bytes) -> tuple[App, list[str]]:
        """Create an app from DSL text; nothing is written when the DSL is refused."""
        d = parse_dsl(text, self._node_check)
        app = App(
            mode=d.mode,
            name=d.name,
            description=d.description,
            icon_type=d.icon_type,
            icon=d.icon,
            icon_background=d.icon_background,
            use_icon_as_answer_icon=d.use_icon_as_answer_icon,
            dsl_version=d.dsl_version,
            model_config_=d.model_config,
            workflow=d.workflow,
            dependencies=d.dependencies,
        )
        with self._db.session() as s:
            s.add(app)
        return app, d.warnings

    def cached(self, app_id: str) -> App | None:
        """The app if it is in the cache and fresh, without touching the database: the async fast path."""
        hit = self._cache.get(app_id)
        if hit is not None and time.monotonic() - hit[0] < self._CACHE_TTL_S:
            return hit[1]
        return None

    def get(self, app_id: str) -> App:
        hit = self._cache.get(app_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._CACHE_TTL_S:
            return hit[1]
        with self._db.session() as s:
            app = s.get(App, app_id)
            if app is None:
                self._cache.pop(app_id, None)
                raise NotFound(f"App {app_id} not found.")
        self._cache[app_id] = (now, app)
        return app

    def export(self, app_id: str, include_secret: bool = False) -> str:
        return export_dsl(definition_of(self.get(app_id)), include_secret)

    def list(self) -> list[AppSummary]:
        with self._db.session() as s:
            rows = s.scalars(select(App).order_by(App.created_at)).all()
            return [AppSummary(a.id, a.name, a.mode, a.description) for a in rows]

    def delete(self, app_id: str) -> None:
        with self._db.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound(f"App {app_id} not found.")
            s.delete(app)
        self._cache.pop(app_id, None)
