"""Shared fixtures: settings on SQLite and on the real PostgreSQL, the app over ASGI, a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from openify.app import create_app
from openify.services.container import Services
from openify.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DSL_DIR = REPO.parent / "shared" / "data" / "dsl"
TEST_DSL_DIR = Path(__file__).resolve().parent / "dsl"
PG_URL = os.environ.get("OPENIFY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")  # noqa: TID251
REDIS_URL = os.environ.get("OPENIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # noqa: TID251
IN_CI = bool(os.environ.get("CI"))  # noqa: TID251

pytest_plugins = ["tests.fake_llm.fixtures"]


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    """The real Redis on the machine (CI starts it)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail(f"Redis at {REDIS_URL} is not reachable; CI must test on it")
        pytest.skip("Redis is not reachable (outside CI)")
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test: a SQLite file, or a schema of its own in the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'openify.db'}"
        return
    if not _pg_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable; CI must test on it")
        pytest.skip("PostgreSQL is not reachable (outside CI)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[call-arg]


def stand_in_provider(base_url: str, **models: dict[str, object]) -> dict[str, object]:
    """A providers.yaml entry served by the stand-in model server, failing fast."""
    return {"type": "openai_compatible", "base_url": base_url, "api_key": "sk-test", "max_retries": 0, "models": models}


def settings_with_providers(
    tmp_path: Path, database_url: str, providers: dict[str, object], default: str | None = None
) -> Settings:
    """Settings whose data directory holds a providers.yaml with `providers` (and `default`)."""
    import yaml

    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    doc: dict[str, object] = {"providers": providers}
    if default is not None:
        doc["default"] = default
    (data / "providers.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return Settings(_env_file=None, data_dir=data, database_url=database_url)  # type: ignore[call-arg]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def services(app: FastAPI) -> Services:
    s: Services = app.state.services
    return s


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as c:
        yield c


@dataclass(frozen=True)
class AppKit:
    """An imported app and a key for it."""

    app_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def import_app(services: Services, dsl: str | Path) -> AppKit:
    text = Path(dsl).read_text(encoding="utf-8") if isinstance(dsl, Path) else dsl
    app, _ = services.apps.import_dsl(text)
    token, _ = services.keys.create("app", app.id)
    return AppKit(app.id, token)


@pytest.fixture
def chat_app(services: Services) -> AppKit:
    return import_app(services, DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml")


@pytest.fixture
def dataset_key(services: Services) -> dict[str, str]:
    token, _ = services.keys.create("dataset")
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            [sys.executable, "-m", "openify.cli", *args, "--data-dir", str(self.data_dir)],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )


def start_server(data_dir: Path, database_url: str, extra_env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENIFY_", "OPENAI_", "ANTHROPIC_", "AZURE_"))}  # noqa: TID251
    env.update({"OPENIFY_DATABASE_URL": database_url, **(extra_env or {})})
    # The server's log goes to a file: a pipe nobody reads fills up, and a server writing to it blocks for good.
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own console script
            [sys.executable, "-m", "openify.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"openify serve exited: {log_path.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return LiveServer(base, data_dir, env, proc)
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("openify serve did not answer /health within 60 s")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def live_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "live", database_url)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI a skipped test fails: nothing skipped may be counted as passing."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, which must run every test: {reason}"
