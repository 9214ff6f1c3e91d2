"""isolation.py holds: every known escape fails from a confined process and a code node, as root and non-root.

The probes (isolation_probe.py) run plain Python and Node with no audit hook or permission model, so only
bubblewrap, the seccomp filter and the rlimits stand in their way. The same probes run weakly isolated
show the leaks, so a probe that stopped detecting one would fail here too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from openify.app import create_app
from openify.security.errors import IsolationUnavailable
from openify.security.isolation import Confinement, IsolationLevel, isolation_level, python_ro_paths, spawn
from openify.security.sandbox import Sandbox, SandboxError
from openify.settings import SandboxSettings, Settings
from tests.security.isolation_probe import (
    CODE_ESCAPES,
    SECRET,
    make_server_state,
    probe_code_nodes,
    probe_isolation,
    probe_node,
    probe_outbound,
)

REPO = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
LIMITS = SandboxSettings(cpu_time_s=5, wall_time_s=20.0, uid_base=1_890_000 + os.getpid() % 100 * 1000)


@pytest.fixture
def server_state(tmp_path: Path) -> Iterator[dict[str, Any]]:
    state = make_server_state(tmp_path / "data")
    yield state
    state["_listener"].close()
    os.close(state["fd"])
    os.environ.pop("OPENIFY_ADMIN_TOKEN", None)  # noqa: TID251 - set by make_server_state


def leaks(result: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in result.items() if not v.startswith("blocked")}


def test_bubblewrap_works_here() -> None:
    # Installed in CI (.ci/run); if this fails every code node on this machine refuses to run.
    assert isolation_level(SandboxSettings()) is IsolationLevel.BUBBLEWRAP


async def test_confined_process_escapes_are_blocked(server_state: dict[str, Any]) -> None:
    result = await probe_isolation(server_state)
    assert len(result) == 18 and leaks(result) == {}, json.dumps(result, ensure_ascii=False, indent=1)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
async def test_node_without_permission_model_cannot_read_files(server_state: dict[str, Any]) -> None:
    assert NODE is not None
    result = await probe_node(server_state, NODE)
    assert len(result) == 4 and leaks(result) == {}, result


async def test_the_probes_see_leaks_without_isolation(server_state: dict[str, Any]) -> None:
    """The same probes, weakly isolated: what bubblewrap prevents is really reachable otherwise."""
    found = leaks(await probe_isolation(server_state, weak=True))
    for attempt in (
        "read data file",
        "os.open dir_fd through a symlink",
        "sqlite ATTACH immutable=1",
        "pidfd_send_signal to the server",
        "connect to the server's loopback",
        "server visible in /proc",
    ):
        assert attempt in found and (SECRET in found[attempt] or "True" in found[attempt]), (attempt, found)
    if NODE is not None:
        assert "node read data file" in leaks(await probe_node(server_state, NODE, weak=True))


def test_code_node_escapes_are_blocked(server_state: dict[str, Any]) -> None:
    result = probe_code_nodes(server_state, LIMITS)
    assert len(result) == len(CODE_ESCAPES) + 1 and leaks(result) == {}, json.dumps(result, ensure_ascii=False)


def _readable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 for p in (path, *path.parents) if p != Path("/"))


def as_nobody(base: Path) -> tuple[list[str], dict[str, str]]:
    """argv prefix and environment that run this Python as uid 65534 (nobody), with `base` as its home.

    The interpreter (pyenv keeps it under /root, 0700) and this checkout are shown to nobody read-only,
    through a mount namespace of the test's own: nothing on the host changes.
    """
    shown = [Path(p).resolve() for p in {sys.base_prefix, sys.prefix, str(REPO)}]
    hidden = [p for p in shown if not _readable_by_others(p)]
    wrap = ["bwrap", "--dev-bind", "/", "/"]
    made: set[Path] = set()
    for path in hidden:
        top = Path("/", path.parts[1])
        if top not in made:
            made.add(top)
            wrap += ["--perms", "0755", "--tmpfs", str(top)]
        for parent in reversed(path.parents):
            if parent not in made and parent.is_relative_to(top) and parent != top:
                made.add(parent)
                wrap += ["--perms", "0755", "--dir", str(parent)]
        wrap += ["--ro-bind", str(path), str(path)]
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(base), "LANG": "C.UTF-8"}
    return [*([*wrap, "--"] if hidden else []), *drop, "--", sys.executable], env


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_escapes_are_blocked_for_a_non_root_server() -> None:
    """The probes again, from a server running as nobody (bubblewrap then makes a user namespace)."""
    base = Path(tempfile.mkdtemp(prefix="openify-nonroot-"))
    os.chown(base, 65534, 65534)
    try:
        argv, env = as_nobody(base)
        done = subprocess.run(  # noqa: S603 - our own argv
            [*argv, "-m", "tests.security.isolation_probe", str(base / "data")],
            env=env, cwd=base, capture_output=True, timeout=240, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        result = json.loads(done.stdout)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert result.pop("uid") == "65534"
    outbound = result.pop("outbound")
    # As nobody, slirp4netns needs a usable /dev/net/tun (0600 on some machines; on others it fails to set up the
    # namespace's network all the same): outbound is then refused, never given unconfined. Where it connects,
    # the host's loopback stays out of reach.
    if outbound == "connected":
        assert result.pop("outbound: loopback").startswith("blocked")
        assert result.pop("outbound: host loopback via gateway").startswith("blocked")
    else:
        assert outbound.startswith("unavailable"), outbound
    expected = 18 + len(CODE_ESCAPES) + 1 + (4 if NODE else 0)
    assert len(result) == expected and leaks(result) == {}, json.dumps(result, ensure_ascii=False, indent=1)


# --- without bubblewrap --------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["python3", "javascript"])
def test_code_nodes_refuse_to_run_without_isolation(language: str) -> None:
    sandbox = Sandbox(SandboxSettings(bwrap_path="/nonexistent/bwrap"))
    code = "def main():\n    return {'a': 1}" if language == "python3" else "function main() { return {a: 1}; }"
    with pytest.raises(IsolationUnavailable) as info:
        sandbox.run(language, code, {})  # type: ignore[arg-type]
    assert "OPENIFY_SANDBOX__ALLOW_WEAK" in str(info.value) and info.value.kind == "unavailable"
    assert isinstance(info.value, SandboxError)
    weak = Sandbox(SandboxSettings(bwrap_path="/nonexistent/bwrap", allow_weak=True))
    assert weak.isolation is IsolationLevel.WEAK
    assert weak.run(language, code, {}) == {"a": 1}  # type: ignore[arg-type]


async def test_spawn_refuses_without_isolation(tmp_path: Path) -> None:
    c = Confinement(argv=["/bin/true"], cwd=tmp_path, env={}, bwrap_path="/nonexistent/bwrap")
    with pytest.raises(IsolationUnavailable):
        await spawn(c)


# --- outbound network -------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("slirp4netns") is None, reason="slirp4netns is not installed")
async def test_outbound_network_reaches_other_hosts_but_not_the_host_loopback(server_state: dict[str, Any]) -> None:
    result = await probe_outbound(server_state)
    assert result["outbound"] == "connected", result
    assert result["outbound: loopback"].startswith("blocked"), result
    assert result["outbound: host loopback via gateway"].startswith("blocked"), result


# --- reporting and the data directory ----------------------------------------------------------------------
async def test_health_reports_isolation_and_data_dir_is_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "fresh" / "data")  # type: ignore[call-arg]
    app: FastAPI = create_app(settings)
    caplog.set_level(logging.INFO, logger="openify")
    async with app.router.lifespan_context(app):
        assert any(
            "untrusted code isolation" in r.message and "bubblewrap+seccomp" in r.message for r in caplog.records
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = (await client.get("/health")).json()
    assert body["sandbox"]["level"] == "bubblewrap+seccomp" and body["sandbox"]["untrusted_code"] == "enabled"
    assert (settings.data_dir.stat().st_mode & 0o777) == 0o700


# --- a venv, as Dify plugins run ----------------------------------------------------------------------------
async def test_a_venv_runs_confined_with_python_ro_paths(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # as root the process runs as nobody: its folder must be open to it (pytest's is 0700)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)  # noqa: S603
    python = venv / "bin" / "python"
    paths = python_ro_paths(python)
    assert paths[0] == venv.resolve() and Path(sys.base_prefix).resolve() in paths
    code = "import json, ssl, sqlite3, sys; print(json.dumps([sys.prefix, sys.base_prefix]))"
    c = Confinement(argv=[str(python), "-c", code], cwd=tmp_path, env={"PATH": "/usr/bin"}, ro_paths=paths)
    proc = await spawn(c, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert json.loads(out) == [str(venv.resolve()), str(Path(sys.base_prefix).resolve())]


# --- the server itself as nobody ----------------------------------------------------------------------------
PEEK = (
    "import os, signal\n"
    "def main() -> dict:\n"
    "    try:\n"
    "        signal.pidfd_send_signal(os.pidfd_open({pid}), signal.SIGKILL)\n"
    "        hit = 'killed'\n"
    "    except OSError as e:\n"
    "        hit = type(e).__name__\n"
    "    return {{'env': ','.join(sorted(os.environ)), 'uid': os.getuid(), 'hit': hit}}\n"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
async def test_a_server_running_as_nobody_runs_code_nodes_isolated() -> None:
    """`openify serve` as uid 65534: /health reports bubblewrap, and a code node neither sees its environment
    nor can kill it (the escape that killed a non-root server before)."""
    from tests.api.workflow_kit import code, dsl, end, start
    from tests.conftest import free_port

    base = Path(tempfile.mkdtemp(prefix="openify-nobody-"))
    os.chown(base, 65534, 65534)
    argv, env = as_nobody(base)
    env |= {"OPENIFY_ADMIN_TOKEN": SECRET * 2, "OPENIFY_DATA_DIR": str(base / "data")}
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own console script
        [*argv, "-m", "openify.cli", "serve", "--port", str(port)],
        env=env, cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(600):
                try:
                    health = await client.get("/health")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read().decode(errors="replace") if server.stderr else ""
                    await asyncio.sleep(0.1)
            assert health.json()["sandbox"]["level"] == "bubblewrap+seccomp", health.text
            # The server's own pid as the sandbox would see it from outside: the python under setpriv/bwrap.
            pids = subprocess.run(["pgrep", "-u", "65534", "-f", "openify.cli serve"], capture_output=True, text=True)  # noqa: S607
            pid = int(pids.stdout.split()[-1])
            app = dsl(
                [start(), code("peek", PEEK.format(pid=pid), {}, {"env": "string", "uid": "number", "hit": "string"}),
                 end(env=["peek", "env"], uid=["peek", "uid"], hit=["peek", "hit"])],
                [("start", "peek"), ("peek", "end")],
            )  # fmt: skip
            (base / "app.yml").write_text(app, encoding="utf-8")
            imported = subprocess.run(  # noqa: S603 - our own console script
                [*argv, "-m", "openify.cli", "app", "import", str(base / "app.yml")],
                env=env, cwd=base, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert imported.returncode == 0, imported.stderr
            auth = {"Authorization": f"Bearer {json.loads(imported.stdout)['api_key']}"}
            body = {"inputs": {}, "user": "u1", "response_mode": "blocking"}
            r = await client.post("/v1/workflows/run", headers=auth, json=body)
            assert r.status_code == 200, r.text
            out = r.json()["data"]["outputs"]
            assert out["hit"] == "PermissionError" and "OPENIFY" not in out["env"], out
            assert (await client.get("/health")).status_code == 200 and server.poll() is None
            assert (base / "data").stat().st_mode & 0o777 == 0o700
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr:
            server.stderr.close()
        shutil.rmtree(base, ignore_errors=True)
