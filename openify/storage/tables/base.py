"""Declarative base and column helpers shared by every table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import DeclarativeBase, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Naive UTC, as stored: both SQLite and PostgreSQL columns are `timestamp without time zone`."""
    return datetime.now(UTC).replace(tzinfo=None)


def id_column() -> object:
    return mapped_column(String(36), primary_key=True, default=new_id)


def created_column() -> object:
    return mapped_column(DateTime, nullable=False, default=utcnow)


def updated_column() -> object:
    return mapped_column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
