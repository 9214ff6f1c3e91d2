"""The one way Openify runs untrusted code: code nodes, Dify plugins and MCP stdio servers.

Under bubblewrap (`IsolationLevel.BUBBLEWRAP`) a confined process gets:
- a read-only minimal root: /usr (with the /bin, /lib, ... links), a few files of /etc, the `ro_paths` it
  names (an interpreter's prefix, a venv, a plugin's source), its own folder `cwd` and `rw_paths` read-write,
  and a fresh /tmp, /dev and /proc; nothing else of the host, so no data directory;
- new pid, network, ipc, uts and cgroup namespaces (and a user namespace when the server is not root): it
  sees only its own processes, and neither the server nor its environment (`env` is the whole environment);
- no capabilities; under a root server, an unused uid of its own (`uid`), so it owns nothing on the host;
- a seccomp filter (built with libseccomp, `_SECCOMP_DENIED`) refusing the kernel interfaces used to leave
  a sandbox or reach other processes: ptrace, pidfd_*, process_vm_*, mount, namespaces, bpf, keyrings, ...;
- rlimits: CPU seconds, address space, processes, open files, file size; no core files;
- `network="none"`: a loopback of its own and nothing else. `network="outbound"`: user-mode networking by
  slirp4netns with `--disable-host-loopback`, so the internet is reachable but not the host's 127.0.0.1
  (where PostgreSQL, Redis and the server listen). The host's other addresses stay reachable as from any
  machine on its network: services that must not be reached from plugins must listen on loopback only.
- it dies with the server (`--die-with-parent`) and in its own session (no TIOCSTI into the server's tty).

Without a working bwrap the level is WEAK: a clean environment, its own session, rlimits, capabilities
dropped (as root: uid 0 without capabilities), no namespaces and no seccomp. Nothing runs then unless the
operator said so (`OPENIFY_SANDBOX__ALLOW_WEAK=true`, passed as `Confinement.allow_weak`).

bubblewrap and slirp4netns are separate programs (Debian `bubblewrap`, `slirp4netns`): Python has no
maintained binding that builds namespaces, and the BPF program comes from libseccomp through `pyseccomp`
(seccomp_filter.py). outbound_network.py wires slirp4netns to a sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openify.security import outbound_network
from openify.security.errors import IsolationUnavailable
from openify.security.seccomp_filter import seccomp_program

__all__ = [
    "Confinement",
    "IsolationLevel",
    "IsolationUnavailable",
    "Launch",
    "confined_argv",
    "isolation_level",
    "launch",
    "python_ro_paths",
    "spawn",
]

log = logging.getLogger(__name__)

NOBODY = 65534


class IsolationLevel(enum.StrEnum):
    BUBBLEWRAP = "bubblewrap+seccomp"
    WEAK = "weak"


@dataclass(frozen=True)
class Confinement:
    """What an untrusted process may see and use; `spawn` runs it."""

    argv: Sequence[str]
    cwd: Path  # bound read-write: the process's own folder
    env: Mapping[str, str]  # the whole environment; nothing of the server's is inherited
    ro_paths: Sequence[Path] = ()  # extra read-only binds (an interpreter prefix, a venv, a plugin's source)
    rw_paths: Sequence[Path] = ()
    network: Literal["none", "outbound"] = "none"  # outbound: the internet, never the host's loopback
    memory_mb: int | None = None  # RLIMIT_AS
    cpu_time_s: int | None = None  # RLIMIT_CPU: SIGXCPU, then SIGKILL a second later
    max_processes: int | None = None  # RLIMIT_NPROC, processes and threads of its uid
    max_open_files: int | None = None  # RLIMIT_NOFILE
    max_file_bytes: int | None = None  # RLIMIT_FSIZE; 0: no file can be written
    # Under a root server, the uid it runs as (default nobody): `cwd`, `rw_paths` and `ro_paths` must be
    # readable (cwd, rw_paths writable) by that uid; their parents are shown to it as 0755 directories.
    uid: int | None = None
    bwrap_path: str = "bwrap"  # SandboxSettings.bwrap_path
    allow_weak: bool = False  # SandboxSettings.allow_weak: run even without bubblewrap


@dataclass
class Launch:
    """A prepared command line: run `argv` with `env`, `cwd` and `pass_fds` (the seccomp program)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    pass_fds: tuple[int, ...]
    level: IsolationLevel
    _fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        """Close the parent's copies of the passed descriptors (after the child has started)."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def python_ro_paths(python: Path | str) -> list[Path]:
    """What an interpreter needs bound read-only (`Confinement.ro_paths`): its venv, if it is in one, and
    the base installation the venv points at (pyenv keeps those under /root/.pyenv). /usr is always bound."""
    exe = Path(python).absolute()
    venv = exe.parent.parent
    paths: list[Path] = []
    base = exe.resolve().parent.parent
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        paths.append(venv.resolve())
        for line in cfg.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                base = Path(value.strip()).resolve().parent
    paths.append(base)
    return [p for p in dict.fromkeys(paths) if not p.is_relative_to("/usr") and p != Path("/")]


# --- detection --------------------------------------------------------------------------------------------


def isolation_level(settings: Any) -> IsolationLevel:
    """The level this host gives (`settings`: SandboxSettings or Settings); probed once per bwrap path."""
    sandbox = getattr(settings, "sandbox", settings)
    return _probe(str(getattr(sandbox, "bwrap_path", "bwrap")))


@functools.cache
def _probe(bwrap_path: str) -> IsolationLevel:
    bwrap = shutil.which(bwrap_path)
    if bwrap is None:
        log.warning("isolation: %r not found; untrusted code can only run weakly isolated", bwrap_path)
        return IsolationLevel.WEAK
    try:
        program = seccomp_program()
    except (OSError, ImportError, ValueError) as e:
        log.warning("isolation: no seccomp filter (%s); untrusted code can only run weakly isolated", e)
        return IsolationLevel.WEAK
    probe = Confinement(argv=["/bin/true"], cwd=Path(tempfile.gettempdir()), env={}, bwrap_path=bwrap)
    fd = _memfd(program)
    try:
        done = subprocess.run(  # noqa: S603 - our own argv
            _bwrap_argv(probe, bwrap, fd), pass_fds=(fd,), capture_output=True, timeout=20, check=False, env={}
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("isolation: bubblewrap failed to start (%s); untrusted code can only run weakly isolated", e)
        return IsolationLevel.WEAK
    finally:
        os.close(fd)
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip()[-300:]
        log.warning("isolation: bubblewrap does not work here (%s); untrusted code can only run weakly", reason)
        return IsolationLevel.WEAK
    return IsolationLevel.BUBBLEWRAP


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("openify-seccomp")  # close-on-exec; pass_fds makes bwrap's copy inheritable
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# --- the command line -------------------------------------------------------------------------------------

_INNER_TMP = "/tmp"  # noqa: S108 - the sandbox's own /tmp: a fresh tmpfs
_ETC_FILES = ("ld.so.cache", "localtime", "nsswitch.conf", "hosts", "mime.types", "ssl", "ca-certificates")


def _rlimit_args(c: Confinement) -> list[str]:
    limits: list[str] = ["--core=0:0"]
    if c.cpu_time_s is not None:
        limits.append(f"--cpu={c.cpu_time_s}:{c.cpu_time_s + 1}")
    if c.memory_mb is not None:
        limits.append(f"--as={c.memory_mb * 1024 * 1024}:{c.memory_mb * 1024 * 1024}")
    if c.max_processes is not None:
        limits.append(f"--nproc={c.max_processes}:{c.max_processes}")
    if c.max_open_files is not None:
        limits.append(f"--nofile={c.max_open_files}:{c.max_open_files}")
    if c.max_file_bytes is not None:
        limits.append(f"--fsize={c.max_file_bytes}:{c.max_file_bytes}")
    return ["/usr/bin/prlimit", *limits, "--"]


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parents
    return [str(p) for p in reversed(parts) if str(p) != "/"]


def _bwrap_argv(c: Confinement, bwrap: str, seccomp_fd: int, block_fd: int | None = None) -> list[str]:
    root = os.geteuid() == 0
    cmd = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if not root:
        cmd += ["--unshare-user", "--disable-userns"]
    # No --clearenv: the caller gives bwrap exactly `env` (not argv, which other local users may read).
    cmd += ["--die-with-parent", "--new-session"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{top}"
        if os.path.islink(host):
            cmd += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            cmd += ["--ro-bind", host, host]
    cmd += ["--perms", "0755", "--dir", "/etc"]  # bwrap makes missing parents 0700
    for name in _ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    if c.network == "outbound":
        cmd += ["--ro-bind", outbound_network.resolv_conf(), "/etc/resolv.conf"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", _INNER_TMP]
    made: set[str] = {"/usr", "/etc", _INNER_TMP, "/proc", "/dev"}
    binds = [("--ro-bind", os.path.realpath(p)) for p in c.ro_paths]
    binds += [("--bind", os.path.realpath(p)) for p in (*c.rw_paths, c.cwd)]
    for how, path in binds:
        if not os.path.exists(path):
            continue
        # Parents are made world-searchable: bwrap would make them 0700.
        for parent in _ancestors(path):
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
        cmd += [how, path, path]
    cmd += ["--chdir", os.path.realpath(c.cwd), "--seccomp", str(seccomp_fd)]
    if block_fd is not None:
        cmd += ["--block-fd", str(block_fd)]
    if root:
        # bwrap keeps only these two for setpriv, which drops to the run's uid and clears every capability.
        uid = NOBODY if c.uid is None else c.uid
        cmd += ["--cap-add", "CAP_SETUID,CAP_SETGID", "--"]
        cmd += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        cmd += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        cmd += ["--"]
    return [*cmd, *_rlimit_args(c), *c.argv]


def _weak_argv(c: Confinement) -> list[str]:
    cmd: list[str] = []
    setpriv = shutil.which("setpriv")
    if setpriv:
        cmd += [setpriv, "--pdeathsig=SIGKILL", "--no-new-privs"]
        if os.geteuid() == 0:
            cmd += ["--inh-caps=-all", "--bounding-set=-all"]
        cmd += ["--"]
    prlimit = _rlimit_args(c) if os.path.exists("/usr/bin/prlimit") else []
    return [*cmd, *prlimit, *c.argv]


def confined_argv(c: Confinement, seccomp_fd: int) -> list[str]:
    """The bwrap command line of `c`, its seccomp program read from `seccomp_fd` (see `launch`)."""
    bwrap = shutil.which(c.bwrap_path)
    if bwrap is None:
        raise IsolationUnavailable(f"bubblewrap ({c.bwrap_path!r}) is not installed")
    return _bwrap_argv(c, bwrap, seccomp_fd)


def _level(c: Confinement) -> IsolationLevel:
    level = _probe(c.bwrap_path)
    if level is IsolationLevel.WEAK and not c.allow_weak:
        raise IsolationUnavailable()
    if level is IsolationLevel.WEAK and c.network == "none":
        log.debug("isolation: weak; %s runs with the host's network", c.argv[:1])
    return level


@contextlib.contextmanager
def launch(c: Confinement) -> Iterator[Launch]:
    """A prepared launch of `c` for subprocess.Popen or asyncio: pass argv, env, cwd and pass_fds.

    Raises IsolationUnavailable when bubblewrap does not work here and `c.allow_weak` is false. Only for
    `network="none"`; `spawn` handles "outbound".
    """
    level = _level(c)
    if level is IsolationLevel.WEAK:
        yield Launch(_weak_argv(c), dict(c.env), os.fspath(c.cwd), (), level)
        return
    if c.network != "none":
        raise ValueError("launch() is for network='none'; use spawn() for outbound networking")
    fd = _memfd(seccomp_program())
    prepared = Launch(confined_argv(c, fd), dict(c.env), os.fspath(c.cwd), (fd,), level, [fd])
    try:
        yield prepared
    finally:
        prepared.close()


async def spawn(c: Confinement, **popen_kwargs: Any) -> asyncio.subprocess.Process:
    """Start `c` (asyncio.create_subprocess_exec keywords, e.g. stdin/stdout=PIPE); the caller reaps it.

    Raises IsolationUnavailable as `launch` does, and when outbound networking is asked for and
    slirp4netns is missing.
    """
    popen_kwargs.setdefault("start_new_session", True)
    if c.network == "none" or _level(c) is IsolationLevel.WEAK:
        with launch(c) as ready:
            return await asyncio.create_subprocess_exec(
                *ready.argv, env=ready.env, cwd=ready.cwd, pass_fds=ready.pass_fds, **popen_kwargs
            )
    return await _spawn_outbound(c, popen_kwargs)


async def _spawn_outbound(c: Confinement, popen_kwargs: dict[str, Any]) -> asyncio.subprocess.Process:
    if outbound_network.slirp4netns_path() is None:
        raise IsolationUnavailable("Outbound networking for isolated processes needs slirp4netns, not installed")
    if not outbound_network.tun_usable():
        raise IsolationUnavailable(
            "Outbound networking for isolated processes needs /dev/net/tun, which this server's user cannot open"
        )
    bwrap = shutil.which(c.bwrap_path)
    assert bwrap is not None  # noqa: S101 - _level probed it
    seccomp_fd = _memfd(seccomp_program())
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe()
    exit_r, exit_w = os.pipe()  # exit_w lives in the sandbox only: its end ends slirp4netns
    argv = _bwrap_argv(c, bwrap, seccomp_fd, block_fd=block_r)
    argv[1:1] = ["--info-fd", str(info_w)]
    passed = (seccomp_fd, info_w, block_r, exit_w)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=dict(c.env), cwd=os.fspath(c.cwd), pass_fds=passed, **popen_kwargs
        )
    except BaseException:
        os.close(exit_r)
        raise
    finally:
        for fd in passed:
            os.close(fd)
    try:
        child = await asyncio.to_thread(outbound_network.child_pid, info_r)
        network = await outbound_network.attach(child, exit_r)
        os.write(block_w, b"1")  # bwrap may now run the process
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    finally:
        for fd in (info_r, block_w, exit_r):
            os.close(fd)
    outbound_network.end_with(proc, network)
    return proc


def report(settings: Any) -> dict[str, str]:
    """What holds on this server, for startup logs and /health (`settings`: SandboxSettings or Settings)."""
    sandbox = getattr(settings, "sandbox", settings)
    level = isolation_level(sandbox)
    weak_ok = bool(getattr(sandbox, "allow_weak", False))
    strong = level is IsolationLevel.BUBBLEWRAP
    return {
        "level": level.value,
        "untrusted_code": "enabled" if strong or weak_ok else "disabled (no bubblewrap; OPENIFY_SANDBOX__ALLOW_WEAK)",
        "outbound_network": outbound_network.describe() if strong else "host network (weak)",
    }
