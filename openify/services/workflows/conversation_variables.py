"""Chatflow conversation variables kept between turns: the engine's ConversationVariables port."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError

from openify.storage.db import Database
from openify.storage.tables import ConversationVariable
from openify.storage.tables.base import utcnow


class ConversationVariableStore:
    """Values of one chatflow version's declared conversation variables, per conversation."""

    def __init__(self, db: Database, app_id: str, declared: Sequence[Mapping[str, Any]]) -> None:
        self._db, self._app_id = db, app_id
        self._declared = {str(v.get("name")): v for v in declared if v.get("name")}

    async def load(self, conversation_id: str) -> Mapping[str, Any]:
        return await asyncio.to_thread(self._load, conversation_id)

    def _load(self, conversation_id: str) -> dict[str, Any]:
        with self._db.session() as s:
            rows = s.scalars(
                select(ConversationVariable).where(ConversationVariable.conversation_id == conversation_id)
            )
            return {r.name: r.value for r in rows if r.name in self._declared}

    async def save(self, conversation_id: str, name: str, value: Any) -> None:
        await asyncio.to_thread(self._save, conversation_id, name, value)

    def _save(self, conversation_id: str, name: str, value: Any) -> None:
        table: Table = ConversationVariable.__table__  # type: ignore[assignment]  # declared tables are Tables
        where = (table.c.conversation_id == conversation_id) & (table.c.name == name)
        with self._db.engine.begin() as conn:
            if conn.execute(update(table).where(where).values(value=value, updated_at=utcnow())).rowcount:
                return
        spec = self._declared.get(name, {})
        try:
            with self._db.session() as s:
                s.add(
                    ConversationVariable(
                        app_id=self._app_id,
                        conversation_id=conversation_id,
                        name=name,
                        value_type=str(spec.get("value_type") or "string"),
                        value=value,
                        description=str(spec.get("description") or ""),
                    )
                )
        except IntegrityError:  # a concurrent turn inserted it first: overwrite
            with self._db.engine.begin() as conn:
                conn.execute(update(table).where(where).values(value=value, updated_at=utcnow()))
