"""Service API keys: random tokens shown once, stored as SHA-256 hashes, looked up per request."""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Literal

from sqlalchemy import select

from openify.errors import NotFound
from openify.storage.db import Database
from openify.storage.tables import ApiKey, App
from openify.storage.tables.base import utcnow

KeyType = Literal["app", "dataset"]
_ALPHABET = string.ascii_letters + string.digits
_TOKEN_CHARS = 32  # 32 chars of 62 symbols = 190 bits
_CACHE_TTL_S = 5.0  # bounds how long another process may still accept a revoked key
_TOUCH_EVERY_S = 60.0  # last_used_at is written at most once a minute per key and process, not per request


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """Who a valid key is: the key's id and type, and the app it belongs to (app keys)."""

    key_id: str
    type: KeyType
    app_id: str | None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    type: str
    app_id: str | None
    hint: str
    created_at: datetime
    last_used_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, tuple[float, KeyPrincipal | None]] = {}
        self._touched: dict[str, float] = {}  # key id -> monotonic time its last_used_at was last written
        self._lock = Lock()

    def create(self, type_: KeyType, app_id: str | None = None) -> tuple[str, KeyInfo]:
        """Make a key and return its token, which is never stored and cannot be shown again."""
        if type_ == "app":
            if app_id is None:
                raise NotFound("An app key needs an app.")
            with self._db.session() as s:
                if s.get(App, app_id) is None:
                    raise NotFound(f"App {app_id} not found.")
        token = f"{type_}-" + "".join(secrets.choice(_ALPHABET) for _ in range(_TOKEN_CHARS))
        row = ApiKey(type=type_, app_id=app_id if type_ == "app" else None, token_hash=hash_token(token),
                     token_hint=f"{token[: len(type_) + 5]}…{token[-4:]}")
        with self._db.session() as s:
            s.add(row)
        return token, _info(row)

    def list(self, app_id: str | None = None) -> list[KeyInfo]:
        with self._db.session() as s:
            q = select(ApiKey).order_by(ApiKey.created_at)
            if app_id is not None:
                q = q.where(ApiKey.app_id == app_id)
            return [_info(k) for k in s.scalars(q).all()]

    def revoke(self, token_or_id: str) -> None:
        """Revoke by token or by key id."""
        with self._db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.token_hash == hash_token(token_or_id)))
            if row is None:
                row = s.get(ApiKey, token_or_id)
            if row is None:
                raise NotFound("API key not found.")
            s.delete(row)
        with self._lock:
            self._cache.clear()

    def cached(self, token: str, type_: KeyType) -> tuple[bool, KeyPrincipal | None]:
        """(found in the cache, principal) without touching the database: the async fast path."""
        hit = self._cache.get(hash_token(token))
        if hit is None or time.monotonic() - hit[0] > _CACHE_TTL_S:
            return False, None
        principal = hit[1]
        return True, principal if principal is not None and principal.type == type_ else None

    def authenticate(self, token: str, type_: KeyType) -> KeyPrincipal | None:
        """The principal of a token of this type, or None. Dify looks keys up by (token, type): a key of
        the other type is simply unknown."""
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or now - hit[0] > _CACHE_TTL_S:
            with self._db.session() as s:
                row = s.scalar(select(ApiKey).where(ApiKey.token_hash == digest))
                principal = KeyPrincipal(row.id, row.type, row.app_id) if row is not None else None  # type: ignore[arg-type]
                if row is not None and row.type == type_ and self._due(row.id, now):
                    # Only on a cache miss (every few seconds per key at most), and then once a minute.
                    row.last_used_at = utcnow()
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, principal)
        else:
            principal = hit[1]
        if principal is None or principal.type != type_:
            return None
        return principal

    def _due(self, key_id: str, now: float) -> bool:
        """Whether this key's last_used_at is stale enough to write now (and mark it written)."""
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < _TOUCH_EVERY_S:
                return False
            if len(self._touched) > 10_000:
                self._touched.clear()
            self._touched[key_id] = now
            return True

    def forget_app(self, app_id: str) -> None:
        """Drop cached principals of a deleted app."""
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1] is None or v[1].app_id != app_id}


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.type, row.app_id, row.token_hint, row.created_at, row.last_used_at)
