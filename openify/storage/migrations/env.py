"""Alembic environment: runs against the engine the caller hands over (Database.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from openify.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("connection_engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///.openify/openify.db")
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        context.run_migrations()


run_migrations_online()
