"""Dify plugin fixtures: the official plugins of ../shared/data/plugins (and tests' own) installed once per test
session, for real (own venvs on Python >= 3.12 with `dify_plugin` from PyPI through uv's cache), then adopted by
each test's server as installed rows."""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openify.services.container import Services
from openify.settings import Settings
from openify.storage.tables import DifyPlugin
from openify.tools.dify_plugins.installer import InstalledPlugin, find_python, install

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "plugins"
if not SHARED.is_dir():  # a worktree under /work: the shared data sits beside it
    SHARED = Path("/work/shared/data/plugins")
OWN = Path(__file__).resolve().parent / "plugins"
OFFICIAL = {
    "maths": SHARED / "maths",
    "json_process": SHARED / "json_process",
    "regex": SHARED / "regex",
    "agent": SHARED / "cot_agent",
}


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, InstalledPlugin]]:
    """Every plugin the tests run, installed once: by name (maths, json_process, regex, agent, everything)."""
    # One folder for every worker of this run (xdist's base temp is per worker; its parent is the run's).
    root = tmp_path_factory.getbasetemp().parent / "dify_plugins"
    root.mkdir(parents=True, exist_ok=True)
    env = Settings(_env_file=None).dify_plugins.passed_env()  # type: ignore[call-arg]
    python = find_python(None)
    sources = {**OFFICIAL, "everything": OWN / "everything"}
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker installs; the others find them installed
        installed = {
            name: install(folder, root, python, lambda _stage: None, env=env) for name, folder in sources.items()
        }
    yield installed


def adopt(services: Services, *plugins: InstalledPlugin) -> None:
    """Record already-installed plugins in this test's database, as a finished install job would."""
    with services.db.session() as s:
        for p in plugins:
            s.add(
                DifyPlugin(
                    id=str(uuid.uuid4()),
                    plugin_key=p.key,
                    version=p.version,
                    source=str(p.source_dir),
                    status="installed",
                    progress="installed",
                    root=str(p.root),
                    declarations=p.declarations,
                )
            )
    services.dify_plugins.source.store.forget()
