"""The code-node sandbox: runs Python 3 or JavaScript `main(...)` in a separate, isolated process.

The boundary is `isolation.py` (bubblewrap namespaces, a seccomp filter, no capabilities, rlimits): a fresh
process per call sees a read-only minimal root, the interpreter, its own temp dir (its cwd, removed
afterwards) and nothing of the server (no data directory, no server process, no environment, no network).
As root each concurrent run gets an unused uid of its own (`_UidPool`), so RLIMIT_NPROC bounds its forks
and threads. Without bubblewrap, code nodes refuse to run unless OPENIFY_SANDBOX__ALLOW_WEAK is set.

Inside, as defence in depth: Python installs an audit hook (sandbox_boot.py) refusing sockets, process
creation, signals, ctypes and file access outside its temp dir; node runs under its permission model with
reads allowed only in the temp dir, and sandbox_boot.js hides `process`, `module` and `fetch`.
Output: stdout capped at max_output_bytes while read; the result must be a JSON object, within Dify's
depth, string and number limits (output_limits.py).
"""

from __future__ import annotations

import json
import marshal
import os
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
from openify.security.confined_process import Finished, Job
from openify.security.errors import SandboxError
from openify.security.isolation import Confinement, IsolationLevel, isolation_level, launch
from openify.security.output_limits import check_output
from openify.settings import SandboxSettings

__all__ = ["Language", "Sandbox", "SandboxError"]

Language = Literal["python3", "javascript"]

_HERE = Path(__file__).resolve().parent
_NODE_HEADROOM_MB = 1024  # V8 reserves ~800 MB of address space before running anything
_UID_RANGE = 1000
_PYTHON_LOADER = (
    "import marshal,sys;c,r=marshal.loads(sys.stdin.buffer.read());g={'__name__':'sandbox_boot'};exec(c,g);g['boot'](r)"
)


@dataclass(frozen=True, slots=True)
class _Launch:
    confinement: Confinement
    payload: bytes
    tmp: str
    uid: int | None


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


class Sandbox:
    """Runs code-node code under `limits`; safe to share between threads and event loops."""

    def __init__(self, limits: SandboxSettings) -> None:
        self.limits = limits
        self._root = os.geteuid() == 0
        self._uids = _pool(limits.uid_base)

    # --- public ---------------------------------------------------------------------------------------
    def run(self, language: Language, code: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run `main(**inputs)` (JavaScript: `main(inputs)`) and return its dict; raise SandboxError."""
        prepared = self._prepare(language, code, inputs)
        try:
            with launch(prepared.confinement) as ready:
                done = confined_process.run(self._job(prepared, ready.argv, ready.pass_fds))
            return self._interpret(language, done)
        finally:
            self._cleanup(prepared)

    async def arun(self, language: Language, code: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """`run` without blocking the event loop."""
        prepared = self._prepare(language, code, inputs)
        try:
            with launch(prepared.confinement) as ready:
                done = await confined_process.arun(self._job(prepared, ready.argv, ready.pass_fds))
            return self._interpret(language, done)
        finally:
            self._cleanup(prepared)

    @property
    def isolation(self) -> IsolationLevel:
        """The isolation this server gives code nodes (see isolation.py)."""
        return isolation_level(self.limits)

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
        uid: int | None = None
        try:
            if self._root:
                uid = self._uids.take()
                os.chown(tmp, uid, uid)
            if language == "python3":
                argv = [sys.executable, "-I", "-S", "-B", "-c", _PYTHON_LOADER]
                memory_mb, ro_paths = self.limits.memory_mb, self._read_roots
                payload = self._python_request(request, tmp)
            else:
                argv = self._node_argv(tmp)
                memory_mb, ro_paths = self.limits.memory_mb + _NODE_HEADROOM_MB, self._node_roots
                payload = request.encode()
            confinement = Confinement(
                argv=argv,
                cwd=Path(tmp),
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"},
                ro_paths=[Path(p) for p in ro_paths],
                memory_mb=memory_mb,
                cpu_time_s=self.limits.cpu_time_s,
                max_processes=self.limits.max_processes,
                max_open_files=self.limits.max_open_files,
                max_file_bytes=0,  # nothing can be written, so no native code can be dropped and loaded
                uid=uid,
                bwrap_path=self.limits.bwrap_path,
                allow_weak=self.limits.allow_weak,
            )
        except BaseException:
            self._cleanup_parts(tmp, uid)
            raise
        return _Launch(confinement=confinement, payload=payload, tmp=tmp, uid=uid)

    def _python_request(self, request_json: str, tmp: str) -> bytes:
        # Plain JSON types only (the round trip drops subclasses), marshalled: the child then needs no json.
        request = json.loads(request_json) | {"tmp": tmp, "read_roots": self._read_roots, "path": self._site_path}
        return marshal.dumps((self._python_boot, request))

    def _node_argv(self, tmp: str) -> list[str]:
        assert self._node is not None  # noqa: S101 - checked by the caller
        flags = [f"--max-old-space-size={self.limits.memory_mb}", "--no-warnings", "--disable-proto=delete"]
        if self._node_permission_flag:
            flags += [self._node_permission_flag, f"--allow-fs-read={tmp}/"]
        return [self._node, *flags, "-e", self._node_boot]

    # --- running --------------------------------------------------------------------------------------
    def _job(self, prepared: _Launch, argv: list[str], pass_fds: tuple[int, ...]) -> Job:
        c = prepared.confinement
        return Job(
            argv=argv,
            payload=prepared.payload,
            cwd=prepared.tmp,
            env=dict(c.env),
            wall_time_s=self.limits.wall_time_s,
            stdout_cap=self.limits.max_output_bytes + 64,  # room for the {"ok": true, "result": ...} envelope
            pass_fds=pass_fds,
        )

    def _cleanup(self, prepared: _Launch) -> None:
        self._cleanup_parts(prepared.tmp, prepared.uid)

    def _cleanup_parts(self, tmp: str, uid: int | None) -> None:
        shutil.rmtree(tmp, ignore_errors=True)
        if uid is not None:
            self._uids.give(uid)

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

    @cached_property
    def _node_roots(self) -> list[str]:
        # A node outside /usr (nvm, /opt) is bound with its install prefix.
        assert self._node is not None  # noqa: S101 - checked by the caller
        prefix = os.path.dirname(os.path.dirname(self._node))
        return [] if prefix.startswith("/usr") else [prefix]


def _parse(stdout: bytes) -> dict[str, Any] | None:
    try:
        reply = json.loads(stdout)
    except (ValueError, RecursionError):
        return None
    return reply if isinstance(reply, dict) else None


def _memory_words(stderr: bytes) -> bool:
    return any(w in stderr for w in (b"heap out of memory", b"Reached heap limit", b"MemoryError", b"Cannot allocate"))
