"""Migrations 0003 and 0006 create exactly what the knowledge, job and annotation tables declare (no drift), on
both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openify.settings import Settings
from openify.storage.db import Database
from openify.storage.tables import Base

MINE = {
    "datasets",
    "dataset_process_rules",
    "documents",
    "document_segments",
    "child_chunks",
    "dataset_tags",
    "dataset_tag_bindings",
    "dataset_metadata",
    "jobs",
    "app_annotations",
    "app_annotation_settings",
}


def _table_of(diff: Any) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if name and hasattr(part, "columns") and not hasattr(part, "table"):
            return str(name)
        if isinstance(part, str) and part in MINE:
            return part
    return None


def test_migration_matches_the_tables(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url)
    try:
        db.upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, Base.metadata)
    finally:
        db.dispose()
    mine = [d for d in diffs if _table_of(d) in MINE]
    assert mine == []
