"""How a Dify plugin process is started: its command, its scrubbed environment, its confinement.

Plugins are third-party code and run under `openify/security/isolation.py`, as code nodes do: bubblewrap with
a read-only minimal root (its own source, venv and interpreter bound read-only, its working folder read-write),
no view of the data directory, database files or keys, a seccomp filter, rlimits, and outbound network
(plugins call external APIs) that cannot reach the host's loopback (PostgreSQL, Redis, the server). The
environment is built here from nothing: no variable of the server (no secrets) is passed on but the proxy and
CA settings (`DifyPluginSettings.passed_env`). Without working bubblewrap a plugin runs only when the operator
allowed weak isolation (OPENIFY_SANDBOX__ALLOW_WEAK), like a code node.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from openify.security import isolation
from openify.settings import Settings
from openify.tools.dify_plugins.installer import InstalledPlugin

Spawner = Callable[[Sequence[str], Path, Mapping[str, str], InstalledPlugin], Awaitable[asyncio.subprocess.Process]]

_LINE_LIMIT = 64 * 1024 * 1024  # one stdout line carries a whole blob message (the SDK inlines files)


def plugin_command(plugin: InstalledPlugin, extra_env: Mapping[str, str]) -> tuple[list[str], Path, dict[str, str]]:
    """`python -m <entrypoint>` in the plugin's folder, as the Go daemon runs it, with a scrubbed environment."""
    plugin.work_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{plugin.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(plugin.work_dir),
        "TMPDIR": str(plugin.work_dir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "VIRTUAL_ENV": str(plugin.venv),
        "INSTALL_METHOD": "local",  # stdio (the SDK's DifyPluginEnv)
        **extra_env,
    }
    return [str(plugin.python), "-m", plugin.entrypoint], plugin.source_dir, env


def _interpreter_prefix(plugin: InstalledPlugin) -> Path | None:
    """The base Python the venv runs on (`home` in pyvenv.cfg): it must be visible inside the confinement."""
    try:
        for line in (plugin.venv / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip()).resolve().parent
    except OSError:
        return None
    return None


def confined_spawner(settings: Settings) -> Spawner:
    """Start plugins confined by `isolation.spawn`, with the sandbox settings code nodes use."""
    sandbox, plugins = settings.sandbox, settings.dify_plugins

    async def spawn(
        argv: Sequence[str], cwd: Path, env: Mapping[str, str], plugin: InstalledPlugin
    ) -> asyncio.subprocess.Process:
        ro = [plugin.venv]
        prefix = _interpreter_prefix(plugin)
        if prefix is not None and not prefix.is_relative_to(Path("/usr")):
            ro.append(prefix)
        if os.geteuid() == 0:  # a root server runs it as nobody: its own folder must be its own
            os.chown(plugin.work_dir, isolation.NOBODY, isolation.NOBODY)
        # The SDK exits when its parent pid is 1 (`IOServer._parent_alive_check`): in bubblewrap's pid namespace
        # the command's parent is that namespace's init, pid 1. A shell that waits for it is its parent instead.
        wrapped = ["/bin/sh", "-c", '"$@"; exit $?', "dify-plugin", *argv]
        confinement = isolation.Confinement(
            argv=wrapped,
            cwd=cwd,
            env=env,
            ro_paths=ro,
            rw_paths=[plugin.work_dir],
            network="outbound",
            memory_mb=plugins.memory_mb or None,
            max_open_files=1024,
            bwrap_path=sandbox.bwrap_path,
            allow_weak=sandbox.allow_weak,
        )
        return await isolation.spawn(
            confinement,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )

    return spawn
