"""End users: one per (app, `user` string), created on first sight."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from openify.errors import EndUserNotFound
from openify.storage.db import Database
from openify.storage.tables import EndUser

DEFAULT_USER = "DEFAULT-USER"  # Dify's shared anonymous user when `user` is optional and absent


class EndUserService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get_or_create(self, app_id: str, user: str | None) -> EndUser:
        session_id = str(user) if user not in (None, "") else DEFAULT_USER
        with self._db.session() as s:
            found = s.scalar(select(EndUser).where(EndUser.app_id == app_id, EndUser.session_id == session_id))
            if found is not None:
                return found
        try:
            with self._db.session() as s:
                row = EndUser(app_id=app_id, session_id=session_id, is_anonymous=session_id == DEFAULT_USER)
                s.add(row)
            return row
        except IntegrityError:  # created by a concurrent request: read theirs
            with self._db.session() as s:
                return s.scalars(
                    select(EndUser).where(EndUser.app_id == app_id, EndUser.session_id == session_id)
                ).one()

    def find(self, app_id: str, user: str) -> EndUser | None:
        with self._db.session() as s:
            return s.scalar(select(EndUser).where(EndUser.app_id == app_id, EndUser.session_id == user))

    def get(self, app_id: str, end_user_id: str) -> EndUser:
        with self._db.session() as s:
            row = s.get(EndUser, end_user_id)
            if row is None or row.app_id != app_id:
                raise EndUserNotFound()
            return row
