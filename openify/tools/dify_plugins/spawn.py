"""How a Dify plugin process is started: its command, its scrubbed environment, its limits.

Plugins are third-party code: they get a fresh environment (no Openify secrets: nothing of the server's
environment is passed on), their own working folder as HOME and TMPDIR, a memory limit, their own process
group, and network access (plugins call external APIs). `confined_spawn` is the one place that starts them.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

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


def confined_spawner(memory_mb: int) -> Spawner:
    """Start plugins with a scrubbed environment, their own session and an address-space limit."""

    def limits() -> None:  # runs in the child between fork and exec
        if memory_mb > 0:
            size = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    async def spawn(
        argv: Sequence[str], cwd: Path, env: Mapping[str, str], plugin: InstalledPlugin
    ) -> asyncio.subprocess.Process:
        del plugin
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
            start_new_session=True,
            preexec_fn=limits,
        )

    return spawn
