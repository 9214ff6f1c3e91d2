"""HTTP clients of the configured providers: pooled connections per provider, timeouts from its config."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx

from openify.providers.config import ModelTarget, ProviderConfig
from openify.providers.failures import UpstreamStatusError, backoff_s, is_retryable, map_provider_errors

log = logging.getLogger(__name__)


def _timeout(config: ProviderConfig) -> httpx.Timeout:
    return httpx.Timeout(connect=config.connect_timeout_s, read=config.read_timeout_s, write=30.0, pool=30.0)


class ClientPool:
    """One async client per (provider, event loop) and one sync client per provider, created on first use.

    An httpx.AsyncClient's connections belong to the loop that opened them, so a client made in another
    loop (a test's, a worker thread's) is replaced rather than shared.
    """

    def __init__(self) -> None:
        self._async: dict[str, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}
        self._sync: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientPool(async={sorted(self._async)}, sync={sorted(self._sync)})"

    def async_client(self, provider: str, config: ProviderConfig) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        found = self._async.get(provider)
        if found is not None and found[0] is loop and not found[1].is_closed:
            return found[1]
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        client = httpx.AsyncClient(timeout=_timeout(config), limits=limits)
        self._async[provider] = (loop, client)
        return client

    def sync_client(self, provider: str, config: ProviderConfig) -> httpx.Client:
        with self._lock:
            client = self._sync.get(provider)
            if client is None or client.is_closed:
                client = self._sync[provider] = httpx.Client(timeout=_timeout(config))
            return client

    def post_json(self, target: ModelTarget, url: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
        """POST synchronously (embeddings, rerank) with the retry policy of the provider; errors mapped."""
        config = target.config
        client = self.sync_client(target.provider, config)
        with map_provider_errors(target.provider, target.secrets):
            attempt = 0
            while True:
                try:
                    response = client.post(url, json=body, headers=headers)
                    if response.status_code >= 400:
                        raise UpstreamStatusError.from_response(response)
                    return response.json()
                except (UpstreamStatusError, httpx.TransportError) as exc:
                    if attempt >= config.max_retries or not is_retryable(exc):
                        raise
                    delay = backoff_s(attempt, config.retry_backoff_s, exc)
                    attempt += 1
                    log.info("%s: %s, retry %d in %.2fs", target.provider, type(exc).__name__, attempt, delay)
                    time.sleep(delay)

    async def aclose(self) -> None:
        """Close every client; async ones only when they belong to the running loop (others are dropped)."""
        loop = asyncio.get_running_loop()
        for owner, client in list(self._async.values()):
            if owner is loop:
                await client.aclose()
        self._async.clear()
        self.close_sync()

    def close_sync(self) -> None:
        with self._lock:
            for client in self._sync.values():
                client.close()
            self._sync.clear()
