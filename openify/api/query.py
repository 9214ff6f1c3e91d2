"""The query string and path of every request, read as Dify's clients send them.

- An empty query value means "not given". Dify's Python SDK (`sdks/python-client`, on httpx) sends every
  optional parameter, unset ones as `?last_id=&limit=&pinned=`, and FastAPI would answer `limit=` with a 400.
  One rule here covers every route.
- NUL characters are stripped from the query and the path by the function that JSON bodies and form fields use
  (schemas/bodies.py `no_nul`): PostgreSQL text cannot hold a NUL, and a NUL in an id, a keyword or a user name
  reached it as a 500.

An ASGI middleware, not a dependency: it must see the query before FastAPI validates it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from openify.api.schemas.bodies import no_nul

# Dify tells these apart: `GET /messages?conversation_id=` is an empty page, without it a 400.
_MEANINGFUL_WHEN_EMPTY = frozenset({"conversation_id"})


class QueryCleaner:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = _cleaned(scope)
        await self.app(scope, receive, send)


def _cleaned(scope: Scope) -> Scope:
    query: bytes = scope.get("query_string", b"")
    path: str = scope["path"]
    changed: dict[str, object] = {}
    if query:
        # Starlette reads the query the same way (latin-1, then percent-decoding as UTF-8)
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        kept = [(no_nul(k), no_nul(v)) for k, v in pairs]
        kept = [(k, v) for k, v in kept if v or k in _MEANINGFUL_WHEN_EMPTY]
        if kept != pairs:
            changed["query_string"] = urlencode(kept).encode("latin-1")
    if "\x00" in path:
        path = no_nul(path)
        changed["path"] = path
        changed["raw_path"] = quote(path).encode("latin-1")
    return {**scope, **changed} if changed else scope
