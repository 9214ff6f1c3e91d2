"""`http_request`: fetch a URL for the agent through the SSRF-guarded client (no internal addresses)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openify.errors import OpenifyError
from openify.security.ssrf import GuardedHttpClient
from openify.settings import Settings

_MAX_OBSERVATION_CHARS = 8000  # what goes back into the prompt; the rest is cut


class HttpRequestTool:
    name = "http_request"
    label = "HTTP Request"
    description = "Send an HTTP request to a public URL and return the status and the response body."
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "http(s) URL"},
            "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
            "headers": {"type": "object", "description": "request headers"},
            "body": {"type": "string", "description": "request body"},
        },
        "required": ["url"],
    }

    def __init__(self, settings: Settings) -> None:
        self._client = GuardedHttpClient(settings.http_node)

    async def invoke(self, arguments: Mapping[str, Any]) -> str:
        url = arguments.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return "error: url must be an http(s) URL"
        method = str(arguments.get("method") or "GET").upper()
        headers = arguments.get("headers") if isinstance(arguments.get("headers"), dict) else None
        body = arguments.get("body")
        content = body if isinstance(body, str) else json.dumps(body) if body is not None else None
        try:
            r = await self._client.request(method, url, headers=headers, content=content)
        except OpenifyError as exc:  # SSRFBlocked, HttpRequestError
            return f"error: {exc.detail}"
        text = r.text
        if len(text) > _MAX_OBSERVATION_CHARS:
            text = text[:_MAX_OBSERVATION_CHARS] + "…"
        return f"status: {r.status_code}\n{text}"
