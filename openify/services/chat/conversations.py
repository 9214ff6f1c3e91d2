"""Conversations of one end user of one app: create, find, list, rename, delete, variables.

A service of its own so the chatflow pipeline stores its conversations exactly as chat apps do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import select

from openify.engine.variables import contains_file
from openify.errors import BadRequest, InvalidParam, NotFound
from openify.storage.db import Database
from openify.storage.tables import Base, Conversation
from openify.storage.tables.base import new_id, utcnow

SortBy = Literal["created_at", "-created_at", "updated_at", "-updated_at"]
_VARIABLES_TABLE = (
    "workflow_conversation_variables"  # the chatflow engine's store (openify/storage/tables/workflows.py)
)


class ConversationNotFound(NotFound):
    """The conversation does not exist, was deleted, or belongs to another end user or app."""

    message = "Conversation Not Exists."


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    has_more: bool


class ConversationService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, app_id: str, end_user_id: str, mode: str, inputs: dict[str, Any], name: str = "") -> Conversation:
        row = self.new(app_id, end_user_id, mode, inputs, name)
        with self._db.session() as s:
            s.add(row)
        return row

    @staticmethod
    def new(app_id: str, end_user_id: str, mode: str, inputs: dict[str, Any], name: str = "") -> Conversation:
        """An unsaved conversation, for callers that add it in their own unit of work."""
        now = utcnow()
        return Conversation(
            id=new_id(),
            app_id=app_id,
            end_user_id=end_user_id,
            mode=mode,
            name=name,
            inputs=inputs,
            introduction="",
            status="normal",
            dialogue_count=0,
            created_at=now,
            updated_at=now,
        )

    def get(self, app_id: str, end_user_id: str, conversation_id: str) -> Conversation:
        with self._db.session() as s:
            return self.get_in(s, app_id, end_user_id, conversation_id)

    @staticmethod
    def get_in(s: sa.orm.Session, app_id: str, end_user_id: str, conversation_id: str) -> Conversation:
        row = s.get(Conversation, conversation_id)
        if row is None or row.app_id != app_id or row.end_user_id != end_user_id or row.status == "deleted":
            raise ConversationNotFound()
        return row

    def find(self, app_id: str, end_user_id: str, conversation_id: str) -> Conversation | None:
        try:
            return self.get(app_id, end_user_id, conversation_id)
        except ConversationNotFound:
            return None

    def page(self, app_id: str, end_user_id: str, last_id: str | None, limit: int, sort_by: SortBy) -> Page:
        desc = sort_by.startswith("-")
        column = Conversation.updated_at if sort_by.lstrip("-") == "updated_at" else Conversation.created_at
        with self._db.session() as s:
            q = select(Conversation).where(
                Conversation.app_id == app_id,
                Conversation.end_user_id == end_user_id,
                Conversation.mode != "completion",
            )
            if last_id:
                last = s.get(Conversation, last_id)
                if last is None or last.app_id != app_id or last.end_user_id != end_user_id:
                    raise ConversationNotFound("Last Conversation Not Exists.")
                pivot = last.updated_at if column is Conversation.updated_at else last.created_at
                q = q.where(column < pivot if desc else column > pivot)
            order: list[Any] = (
                [column.desc(), Conversation.id.desc()] if desc else [column.asc(), Conversation.id.asc()]
            )
            rows = list(s.scalars(q.order_by(*order).limit(limit + 1)).all())
        return Page(rows[:limit], len(rows) > limit)

    def rename(self, app_id: str, end_user_id: str, conversation_id: str, name: str) -> Conversation:
        with self._db.session() as s:
            row = self.get_in(s, app_id, end_user_id, conversation_id)
            row.name = name
            row.updated_at = utcnow()
        return row

    def set_name(self, conversation_id: str, name: str) -> None:
        """Name a conversation without touching `updated_at` (automatic naming)."""
        with self._db.session() as s:
            s.execute(
                sa.update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(name=name, updated_at=Conversation.updated_at)
            )

    def delete(self, app_id: str, end_user_id: str, conversation_id: str) -> None:
        """Hard delete: messages, feedback and variables go with it (foreign keys cascade)."""
        with self._db.session() as s:
            row = self.get_in(s, app_id, end_user_id, conversation_id)
            table = Base.metadata.tables.get(_VARIABLES_TABLE)
            if table is not None:
                s.execute(sa.delete(table).where(table.c.conversation_id == row.id))
            s.delete(row)

    # --- conversation variables (chatflow apps store them; chat apps have none) ----------------------
    def list_variables(
        self, app_id: str, end_user_id: str, conversation_id: str, last_id: str | None, limit: int, name: str | None
    ) -> Page:
        table = Base.metadata.tables.get(_VARIABLES_TABLE)
        with self._db.session() as s:
            self.get_in(s, app_id, end_user_id, conversation_id)
            if table is None:
                return Page([], False)
            q = select(table).where(table.c.conversation_id == conversation_id)
            if name:
                q = q.where(table.c.name == name)
            if last_id:
                last = s.execute(
                    select(table).where(table.c.id == last_id, table.c.conversation_id == conversation_id)
                ).first()
                if last is None:
                    raise InvalidParam("Last variable not found.")
                q = q.where(
                    sa.or_(
                        table.c.created_at > last.created_at,
                        sa.and_(table.c.created_at == last.created_at, table.c.id > last.id),
                    )
                )
            rows = [dict(r._mapping) for r in s.execute(q.order_by(table.c.created_at, table.c.id).limit(limit + 1))]
        return Page(rows[:limit], len(rows) > limit)

    def update_variable(
        self, app_id: str, end_user_id: str, conversation_id: str, variable_id: str, value: Any
    ) -> dict[str, Any]:
        table = Base.metadata.tables.get(_VARIABLES_TABLE)
        with self._db.session() as s:
            self.get_in(s, app_id, end_user_id, conversation_id)
            if table is None:
                raise NotFound("Conversation variable not found.")
            row = s.execute(
                select(table).where(table.c.id == variable_id, table.c.conversation_id == conversation_id)
            ).first()
            if row is None:
                raise NotFound("Conversation variable not found.")
            value = _checked_value(str(row.value_type), value)
            s.execute(sa.update(table).where(table.c.id == row.id).values(value=value, updated_at=utcnow()))
            updated = s.execute(select(table).where(table.c.id == row.id)).one()
        return dict(updated._mapping)


def _checked_value(value_type: str, value: Any) -> Any:
    ok = {
        "string": lambda v: isinstance(v, str),
        "secret": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
    }.get(value_type)
    if value_type.startswith("array"):
        ok = lambda v: isinstance(v, list)  # noqa: E731 - one more row of the table above
    if ok is not None and not ok(value):
        raise BadRequest(f"Type mismatch: variable expects {value_type}.")
    if contains_file(value):  # a File value names a stored file directly: only the server makes them
        raise BadRequest("Invalid upload file")
    return value
