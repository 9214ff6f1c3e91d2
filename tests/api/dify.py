"""Assertions on Dify's wire shapes, pinned once."""

from __future__ import annotations

import httpx


def assert_dify_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"code", "message", "status"}, body
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert isinstance(body["message"], str)
    return body  # type: ignore[no-any-return]
