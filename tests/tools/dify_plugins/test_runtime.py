"""Plugin processes: multiplexed, timed, restarted after a crash, stopped when idle, with a scrubbed environment
and credentials that are stored encrypted and never shown again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from openify.app import create_app
from openify.services.container import Services
from openify.settings import DifyPluginSettings, Settings
from openify.storage.tables import DifyPluginCredential
from openify.tools.base import JsonMessage, TextMessage, ToolCall, ToolError, ToolMessage, ToolRef
from openify.tools.dify_plugins.installer import InstalledPlugin
from tests.tools.dify_plugins.conftest import adopt

# Real plugin processes (and, for the first test of a session, installing them) on a shared 2-core machine.
pytestmark = pytest.mark.timeout(300)

PROBE = ToolRef("plugin", "openify-tests/everything/everything", "probe")
CALL = ToolCall(user_id="u1")
Host = Callable[..., Any]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is tested here is the plugin processes, not storage (test_backwards covers both)."""
    return f"sqlite:///{tmp_path / 'openify.db'}"


@pytest.fixture
def host(tmp_path: Path, database_url: str, installed_plugins: dict[str, InstalledPlugin]) -> Host:
    @asynccontextmanager
    async def start(**plugin_settings: Any) -> AsyncIterator[Services]:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "data",
            database_url=database_url,
            dify_plugins=DifyPluginSettings(**plugin_settings),
        )
        app: FastAPI = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            adopt(services, installed_plugins["everything"])
            yield services

    return start


async def probe(services: Services, action: str, **args: Any) -> list[ToolMessage]:
    params = {"action": action, "args": json.dumps(args)}
    return [m async for m in services.tools.call(PROBE, params, CALL)]


def pids(services: Services) -> list[int]:
    return [p.pid for p in services.dify_plugins.source.runtime.running()]


async def test_concurrent_calls_share_one_warm_process(host: Host) -> None:
    async with host() as services:
        await probe(services, "echo", text="warm")
        started = time.monotonic()
        results = await asyncio.gather(*(probe(services, "sleep", seconds=0.5, tag=str(i)) for i in range(8)))
        elapsed = time.monotonic() - started
        assert list(results) == [[TextMessage(f"slept {i}")] for i in range(8)]  # each session its own answer
        assert elapsed < 2.5, elapsed  # run side by side, not one after another (8 x 0.5 s)
        assert len(pids(services)) == 1


async def test_a_killed_plugin_fails_its_calls_and_is_restarted(host: Host) -> None:
    async with host() as services:
        await probe(services, "echo", text="warm")
        [pid] = pids(services)
        slow = asyncio.create_task(probe(services, "sleep", seconds=30))
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ToolError, match="exited"):
            await asyncio.wait_for(slow, timeout=5)  # fails cleanly and at once, never waits for its 30 s
        assert await probe(services, "echo", text="又活了") == [TextMessage("又活了")]
        assert pids(services) != [pid]

        # The plugin's own crash (os._exit inside a call) is the same.
        with pytest.raises(ToolError, match="exited"):
            await asyncio.wait_for(probe(services, "crash"), timeout=5)
        assert await probe(services, "echo", text="ok") == [TextMessage("ok")]


async def test_time_limit_and_idle_stop(host: Host) -> None:
    async with host(invoke_timeout_s=3.0, idle_stop_s=0.5) as services:
        assert await probe(services, "echo", text="warm") == [TextMessage("warm")]
        started = time.monotonic()
        with pytest.raises(ToolError, match="did not finish within 3 s"):
            await probe(services, "sleep", seconds=10)
        assert 2.9 < time.monotonic() - started < 6
        assert await probe(services, "echo", text="still serving") == [TextMessage("still serving")]
        assert pids(services)
        await asyncio.sleep(2.0)  # idle past 0.5 s: stopped
        assert pids(services) == []
        assert await probe(services, "echo", text="back") == [TextMessage("back")]  # started again on use


async def test_environment_is_scrubbed_and_data_unreachable(host: Host, tmp_path: Path) -> None:
    async with host() as services:
        database = tmp_path / "openify.db"
        assert database.is_file()
        [read] = await probe(services, "read", path=str(database))
        assert isinstance(read, JsonMessage) and read.data == {"error": "FileNotFoundError"}  # not in its view
        keys = next((services.settings.data_dir / "blobs" / "keys").glob("*.key"), None)
        if keys is not None:
            [read] = await probe(services, "read", path=str(keys))
            assert isinstance(read, JsonMessage) and "error" in read.data
        [message] = await probe(services, "environment")
        assert isinstance(message, JsonMessage)
        env = set(message.data["env"])
        assert not {k for k in env if k.startswith("OPENIFY") or "KEY" in k or "TOKEN" in k or "SECRET" in k}
        assert message.data["home"].endswith("/work")  # its own working folder
        assert message.data["home"] != str(tmp_path / "data")


async def test_credentials_reach_the_plugin_and_are_never_shown(host: Host) -> None:
    async with host() as services:
        shown = await services.dify_plugins.set_credentials(
            "openify-tests/everything/everything", {"api_key": "sk-秘密"}
        )
        assert shown == {"provider": "openify-tests/everything/everything", "credentials": ["api_key"]}
        [message] = await probe(services, "credentials")
        assert isinstance(message, JsonMessage) and message.data == {"api_key": "sk-秘密"}
        with services.db.session() as s:
            [row] = s.query(DifyPluginCredential).all()
            assert b"sk-" not in row.secret and "秘密".encode() not in row.secret  # encrypted at rest
        assert "sk-" not in json.dumps(services.dify_plugins.list(), ensure_ascii=False)
        with pytest.raises(Exception, match="no credential 'nope'"):
            await services.dify_plugins.set_credentials("openify-tests/everything/everything", {"nope": "x"})
