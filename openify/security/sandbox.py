"""The code-node sandbox: runs Python 3 or JavaScript `main(...)` in a separate, confined process.

Layers, outermost first (each holds without the others; `Sandbox.isolation` says which this host has):
- Process: a fresh process per call in its own session, cwd a fresh temp dir (removed afterwards), an
  environment of PATH/HOME/TMPDIR/LANG only; wall time kills the whole process group (confined_process.py).
- Network namespace (`unshare --net`, as root; `--map-root-user` otherwise, if the host allows): the
  child has no interface but a down loopback, so no connection of any kind leaves it.
- Own uid and no capabilities (root servers, setpriv): one unused uid per concurrent run, so RLIMIT_NPROC
  bounds forks and threads, nothing owned by root can be written, and no signal reaches the server or
  another run. Where the interpreter is out of other users' reach (e.g. under /root) the child keeps
  CAP_DAC_READ_SEARCH alone, so reads stay possible and are limited by the layers below. The child also
  gets SIGKILL if the server dies (pdeathsig).
- rlimits (prlimit, applied by the child to itself): CPU seconds (SIGXCPU, then SIGKILL), address space,
  no core files, 64 files, 32 processes, file size 0 (nothing can be written, so no native code can be
  dropped and loaded; the temp dir serves as cwd and tempfile dir, read-only in effect).
- In the child: Python installs an audit hook (sandbox_boot.py) refusing sockets, process creation,
  signals, ctypes, rlimit changes and file access outside its temp dir (reads also under the interpreter
  prefix and site-packages, so installed packages such as jieba import); node runs under its permission
  model with reads allowed only in the temp dir (no child processes, workers, addons or writes), and
  sandbox_boot.js hides `process`, `module` and `fetch` and gives a `require` without network modules.
- Output: stdout capped at max_output_bytes while read; the result must be a JSON object, within Dify's
  depth, string and number limits (output_limits.py).
"""

from __future__ import annotations

import json
import marshal
import os
import resource
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import CodeType
from typing import Any, Literal

from openify.security import confined_process
from openify.security.confined_process import Confinement, Finished
from openify.security.errors import SandboxError
from openify.security.output_limits import check_output
from openify.settings import SandboxSettings

__all__ = ["Language", "Sandbox", "SandboxError"]

Language = Literal["python3", "javascript"]

_HERE = Path(__file__).resolve().parent
_NODE_HEADROOM_MB = 1024  # V8 reserves ~800 MB of address space before running anything
_FILES = 64
_UID_RANGE = 1000
_PYTHON_LOADER = (
    "import marshal,sys;c,r=marshal.loads(sys.stdin.buffer.read());g={'__name__':'sandbox_boot'};exec(c,g);g['boot'](r)"
)
_PRLIMIT_NAMES = {
    resource.RLIMIT_CPU: "cpu",
    resource.RLIMIT_AS: "as",
    resource.RLIMIT_CORE: "core",
    resource.RLIMIT_FSIZE: "fsize",
    resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_NPROC: "nproc",
}


@dataclass(frozen=True, slots=True)
class _Launch:
    argv: list[str]
    payload: bytes
    tmp: str
    uid: int | None
    rlimits: list[tuple[int, int, int]]


class _UidPool:
    """Unused uids handed to concurrent runs, so no two runs share a process count or may signal each other."""

    def __init__(self, base: int) -> None:
        self._free = list(range(base + _UID_RANGE - 1, base - 1, -1))
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            if not self._free:
                raise SandboxError("Too many code nodes are running at once", kind="unavailable")
            return self._free.pop()

    def give(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


# uids are a resource of the whole process, so pools are shared by every Sandbox with the same base.
_POOLS: dict[int, _UidPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(base: int) -> _UidPool:
    with _POOLS_LOCK:
        return _POOLS.setdefault(base, _UidPool(base))


def _usable_by_others(path: str) -> bool:
    """Whether another uid could read or run `path`: readable or executable by others, every parent searchable."""
    p = Path(os.path.realpath(path))
    try:
        return bool(p.stat().st_mode & 0o005) and all(parent.stat().st_mode & 0o001 for parent in p.parents)
    except OSError:
        return False


class Sandbox:
    """Runs code-node code under `limits`; safe to share between threads and event loops."""

    def __init__(self, limits: SandboxSettings) -> None:
        self.limits = limits
        self._root = os.geteuid() == 0
        self._uids = _pool(limits.uid_base)

    # --- public ---------------------------------------------------------------------------------------
    def run(self, language: Language, code: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run `main(**inputs)` (JavaScript: `main(inputs)`) and return its dict; raise SandboxError."""
        launch = self._prepare(language, code, inputs)
        try:
            return self._interpret(language, confined_process.run(self._confinement(launch)))
        finally:
            self._cleanup(launch)

    async def arun(self, language: Language, code: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """`run` without blocking the event loop."""
        launch = self._prepare(language, code, inputs)
        try:
            return self._interpret(language, await confined_process.arun(self._confinement(launch)))
        finally:
            self._cleanup(launch)

    @cached_property
    def isolation(self) -> dict[str, bool]:
        """Which kernel layers this server can use (see the module docstring)."""
        return {
            "network_namespace": bool(self._unshare),
            "rlimits": True,
            "die_with_server": self._setpriv is not None,
            "own_uid": self._drops_uid,
            "node_permission_model": self._node is not None and self._node_permission_flag is not None,
        }

    # --- preparing ------------------------------------------------------------------------------------
    def _prepare(self, language: Language, code: str, inputs: dict[str, Any]) -> _Launch:
        if language not in ("python3", "javascript"):
            raise SandboxError(f"Unsupported code language: {language}", kind="unavailable")
        try:
            request = json.dumps({"code": code, "inputs": inputs}, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise SandboxError(f"Code node inputs are not JSON: {e}", kind="invalid_input") from e
        if language == "javascript" and self._node is None:
            raise SandboxError(
                f"JavaScript code needs Node.js, and {self.limits.node_path!r} was not found on this server",
                kind="unavailable",
            )
        tmp = tempfile.mkdtemp(prefix="openify-code-")
        try:
            uid = self._uids.take() if self._drops_uid else None
            if uid is not None:
                os.chown(tmp, uid, uid)
            if language == "python3":
                rlimits = self._rlimits(self.limits.memory_mb)
                argv, payload = self._python_argv(uid, rlimits), self._python_request(request, tmp)
            else:
                rlimits = self._rlimits(self.limits.memory_mb + _NODE_HEADROOM_MB)
                argv, payload = self._node_argv(tmp, uid, rlimits), request.encode()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return _Launch(argv=argv, payload=payload, tmp=tmp, uid=uid, rlimits=rlimits)

    def _python_request(self, request_json: str, tmp: str) -> bytes:
        # Plain JSON types only (the round trip drops subclasses), marshalled: the child then needs no json.
        request = json.loads(request_json) | {"tmp": tmp, "read_roots": self._read_roots, "path": self._site_path}
        return marshal.dumps((self._python_boot, request))

    def _rlimits(self, memory_mb: int) -> list[tuple[int, int, int]]:
        cpu, memory = self.limits.cpu_time_s, memory_mb * 1024 * 1024
        nproc = self.limits.max_processes
        return [
            (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU first, SIGKILL a second later
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_FSIZE, 0, 0),
            (resource.RLIMIT_NOFILE, _FILES, _FILES),
            (resource.RLIMIT_NPROC, nproc, nproc),
        ]

    def _prefix(self, uid: int | None, rlimits: list[tuple[int, int, int]], keep_reads: bool) -> list[str]:
        """unshare, then prlimit, then setpriv: each execs the next, so the child keeps one pid throughout."""
        cmd: list[str] = [*self._unshare, "--"] if self._unshare else []
        if self._prlimit:
            cmd += [self._prlimit, *(f"--{_PRLIMIT_NAMES[w]}={soft}:{hard}" for w, soft, hard in rlimits), "--"]
        if self._setpriv:
            # pdeathsig: a child outlives neither the server nor the thread waiting for it.
            cmd += [self._setpriv, "--pdeathsig=SIGKILL"]
            if uid is not None:
                cmd += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
            if self._root:
                # Where the executable is out of other users' reach (e.g. under /root), the child keeps
                # CAP_DAC_READ_SEARCH alone: reads go on as before (the audit hook or node's permission model
                # limits them) while writes, signals and the process count are the kernel's business.
                keep = ",+dac_read_search" if keep_reads and uid is not None else ""
                cmd += [f"--inh-caps=-all{keep}", f"--bounding-set=-all{keep}"]
                cmd += [f"--ambient-caps=-all{keep}"] if keep else []
            cmd += ["--no-new-privs", "--"]
        return cmd

    def _python_argv(self, uid: int | None, rlimits: list[tuple[int, int, int]]) -> list[str]:
        python = [sys.executable, "-I", "-S", "-B", "-c", _PYTHON_LOADER]
        return [*self._prefix(uid, rlimits, self._python_keeps_reads), *python]

    def _node_argv(self, tmp: str, uid: int | None, rlimits: list[tuple[int, int, int]]) -> list[str]:
        assert self._node is not None  # noqa: S101 - checked by the caller
        flags = [f"--max-old-space-size={self.limits.memory_mb}", "--no-warnings", "--disable-proto=delete"]
        if self._node_permission_flag:
            flags += [self._node_permission_flag, f"--allow-fs-read={tmp}/"]
        prefix = self._prefix(uid, rlimits, not _usable_by_others(self._node))
        return [*prefix, self._node, *flags, "-e", self._node_boot]

    @cached_property
    def _python_keeps_reads(self) -> bool:
        return not all(_usable_by_others(p) for p in (sys.executable, os.__file__, *self._site_path))

    @property
    def _drops_uid(self) -> bool:
        return self._root and self._setpriv is not None

    # --- running --------------------------------------------------------------------------------------
    def _confinement(self, launch: _Launch) -> Confinement:
        return Confinement(
            argv=launch.argv,
            payload=launch.payload,
            cwd=launch.tmp,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": launch.tmp, "TMPDIR": launch.tmp, "LANG": "C.UTF-8"},
            wall_time_s=self.limits.wall_time_s,
            stdout_cap=self.limits.max_output_bytes + 64,  # room for the {"ok": true, "result": ...} envelope
            rlimits=[] if self._prlimit else launch.rlimits,
        )

    def _cleanup(self, launch: _Launch) -> None:
        shutil.rmtree(launch.tmp, ignore_errors=True)
        if launch.uid is not None:
            self._uids.give(launch.uid)

    # --- interpreting ---------------------------------------------------------------------------------
    def _interpret(self, language: Language, done: Finished) -> dict[str, Any]:
        if done.timed_out:
            raise SandboxError(
                f"Code execution exceeded the time limit of {self.limits.wall_time_s:g} s", kind="wall_time"
            )
        if done.overflow:
            raise SandboxError(
                f"Code output exceeds the limit of {self.limits.max_output_bytes} bytes", kind="output_size"
            )
        reply = _parse(done.stdout)
        if reply is not None:
            if reply.get("ok") is True and isinstance(reply.get("result"), dict):
                result: dict[str, Any] = reply["result"]
                check_output(result, self.limits)
                return result
            if reply.get("ok") is False:
                raise SandboxError(str(reply.get("error")), kind=str(reply.get("kind", "exception")))
        raise self._crash(language, done)

    def _crash(self, language: Language, done: Finished) -> SandboxError:
        rc, stderr = done.returncode, done.stderr
        if rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL):
            if rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU) or not _memory_words(stderr):
                return SandboxError(
                    f"Code execution exceeded the CPU time limit of {self.limits.cpu_time_s} s", kind="cpu_time"
                )
        if _memory_words(stderr) or (language == "javascript" and rc in (-signal.SIGABRT, -signal.SIGTRAP)):
            return SandboxError("Memory limit exceeded", kind="memory")
        if rc in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            return SandboxError("Writing files is not allowed in the code sandbox", kind="file_write")
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        detail = f": {' '.join(tail)}" if tail else ""
        return SandboxError(f"Code execution failed with exit status {rc}{detail}", kind="crashed")

    # --- environment probes (cached per instance) -----------------------------------------------------
    @cached_property
    def _unshare(self) -> list[str] | None:
        exe = shutil.which("unshare")
        if exe is None:
            return None
        cmd = [exe, "--net"] if self._root else [exe, "--map-root-user", "--net"]
        try:
            ok = subprocess.run([*cmd, "--", "true"], capture_output=True, timeout=10, check=False).returncode == 0  # noqa: S603
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        return cmd if ok else None

    @cached_property
    def _setpriv(self) -> str | None:
        return shutil.which("setpriv")

    @cached_property
    def _prlimit(self) -> str | None:
        return shutil.which("prlimit")

    @cached_property
    def _node(self) -> str | None:
        found = shutil.which(self.limits.node_path)
        return os.path.realpath(found) if found else None

    @cached_property
    def _node_permission_flag(self) -> str | None:
        assert self._node is not None  # noqa: S101
        try:
            version = subprocess.run([self._node, "--version"], capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
            major = int(version.stdout.strip().lstrip("v").split(".")[0])
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None
        if major >= 23:
            return "--permission"
        return "--experimental-permission" if major >= 20 else None

    @cached_property
    def _python_boot(self) -> CodeType:
        # Compiled once here and sent as marshal data: the child neither reads nor compiles it.
        return compile((_HERE / "sandbox_boot.py").read_text(encoding="utf-8"), str(_HERE / "sandbox_boot.py"), "exec")

    @cached_property
    def _node_boot(self) -> str:
        return (_HERE / "sandbox_boot.js").read_text(encoding="utf-8")

    @cached_property
    def _site_path(self) -> list[str]:
        paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
        return [p for p in dict.fromkeys(os.path.realpath(p) for p in paths) if os.path.isdir(p)]

    @cached_property
    def _read_roots(self) -> list[str]:
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        roots = [os.path.realpath(p) for p in prefixes] + self._site_path + ["/usr/share/zoneinfo"]
        return [r for r in dict.fromkeys(roots) if r not in ("/", "")]


def _parse(stdout: bytes) -> dict[str, Any] | None:
    try:
        reply = json.loads(stdout)
    except (ValueError, RecursionError):
        return None
    return reply if isinstance(reply, dict) else None


def _memory_words(stderr: bytes) -> bool:
    return any(w in stderr for w in (b"heap out of memory", b"Reached heap limit", b"MemoryError", b"Cannot allocate"))
