"""Sites (an app's shareable web page), the visitors' passports and their rate limit.

A site is found by its random `code`, as Dify's. A visitor gets a passport: an HMAC-signed token naming the
app, the site code and a random visitor id, so each browser is one anonymous end user (`web-<id>`) and the
page never holds the app's API key. Hand-written with `hmac`: no JWT library is a dependency, and the token
is only ever read by this server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openify.errors import NotFound, TooManyRequests, Unauthorized
from openify.storage.db import Database
from openify.storage.tables import App, Site

SITE_SETTINGS = (
    "title",
    "icon",
    "description",
    "copyright",
    "privacy_policy",
    "default_language",
    "chat_color_theme",
    "show_workflow_steps",
    "use_icon_as_answer_icon",
)
PAGE_BY_MODE = {
    "chat": "chat",
    "agent-chat": "chat",
    "advanced-chat": "chat",
    "completion": "completion",
    "workflow": "workflow",
}
_CODE_ALPHABET = string.ascii_letters + string.digits
PASSPORT_TTL_S = 30 * 24 * 3600
VISITOR_PREFIX = "web-"


class SiteNotFound(NotFound):
    code, status, message = "not_found", 404, "Site not found."


def new_code() -> str:
    """16 random letters and digits, as Dify's Site.generate_code."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))


def page_url(site: Site, mode: str) -> str:
    return f"/{PAGE_BY_MODE.get(mode, 'chat')}/{site.code}"


def site_body(site: Site, app: App) -> dict[str, Any]:
    """Dify's web app `site` object (also what the Service API's /site reports)."""
    return {
        "title": site.title,
        "chat_color_theme": site.chat_color_theme,
        "chat_color_theme_inverted": False,
        "icon_type": "emoji",
        "icon": site.icon if site.icon is not None else app.icon,
        "icon_background": app.icon_background,
        "icon_url": None,
        "description": site.description,
        "copyright": site.copyright,
        "privacy_policy": site.privacy_policy,
        "custom_disclaimer": "",
        "default_language": site.default_language,
        "show_workflow_steps": site.show_workflow_steps,
        "use_icon_as_answer_icon": site.use_icon_as_answer_icon,
    }


class SiteService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, app_id: str) -> Site | None:
        with self._db.session() as s:
            return s.get(Site, app_id)

    def by_code(self, code: str) -> tuple[Site, App]:
        """The enabled site of this code and its app; 404 otherwise (a disabled site is not told apart)."""
        with self._db.session() as s:
            site = s.scalar(select(Site).where(Site.code == code))
            app = s.get(App, site.app_id) if site is not None else None
        if site is None or app is None or not site.enabled or app.status != "normal":
            raise SiteNotFound()
        return site, app

    def configure(self, app_id: str, enabled: bool | None = None, **settings: Any) -> tuple[Site, App]:
        """Create the app's site on first use (disabled, titled by the app), then apply what is given."""
        unknown = set(settings) - set(SITE_SETTINGS)
        if unknown:
            raise ValueError(f"unknown site settings: {sorted(unknown)}")
        with self._db.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("App not found.")
            site = s.get(Site, app_id)
            if site is None:
                site = Site(
                    app_id=app_id,
                    code=new_code(),
                    enabled=False,
                    title=app.name,
                    description=app.description or None,
                    default_language="en-US",
                    show_workflow_steps=True,
                    use_icon_as_answer_icon=app.use_icon_as_answer_icon,
                )
                s.add(site)
            if enabled is not None:
                site.enabled = enabled
            for name, value in settings.items():
                setattr(site, name, value)
        return site, app


@dataclass(frozen=True, slots=True)
class Passport:
    app_id: str
    code: str
    visitor: str  # the end user's `user` string: "web-<random>"


class Passports:
    """Signs and checks visitors' passports with a key kept in the data directory."""

    def __init__(self, key: Callable[[], bytes], ttl_s: int = PASSPORT_TTL_S) -> None:
        self._load_key = key
        self._key: bytes | None = None
        self.ttl_s = ttl_s

    def _sign(self, payload: bytes) -> str:
        if self._key is None:
            self._key = self._load_key()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, app_id: str, code: str) -> tuple[str, Passport]:
        passport = Passport(app_id, code, VISITOR_PREFIX + secrets.token_hex(16))
        body = {"app_id": app_id, "code": code, "visitor": passport.visitor, "exp": int(time.time()) + self.ttl_s}
        payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
        return f"{payload.decode()}.{self._sign(payload)}", passport

    def check(self, token: str, code: str) -> Passport:
        """The passport of a valid, unexpired token issued for this site code; 401 otherwise."""
        payload, _, sign = token.partition(".")
        if not payload or not sign or not hmac.compare_digest(self._sign(payload.encode()), sign):
            raise Unauthorized("Invalid passport.")
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            raise Unauthorized("Invalid passport.") from None
        if body.get("code") != code:
            raise Unauthorized("The passport belongs to another site.")
        if int(body.get("exp", 0)) < time.time():
            raise Unauthorized("The passport has expired.")
        return Passport(str(body["app_id"]), str(body["code"]), str(body["visitor"]))


class VisitorRateLimit:
    """At most `limit` requests per visitor in any `window_s` seconds (a sliding window in this process)."""

    def __init__(self, limit: int = 60, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, visitor: str) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(visitor, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                raise TooManyRequests("Too many requests from this visitor. Please try again later.")
            hits.append(now)
            if len(self._hits) > 100_000:  # bounded: forget idle visitors
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]:
                    del self._hits[k]
