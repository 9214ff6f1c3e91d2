"""Bootstrap of a Python code-node process: the child half of `Sandbox`, run as `python -I -S -c <this source>`.

It imports nothing the interpreter has not already loaded but os (json alone would double the start-up time,
as it pulls in re): it reads one marshal-encoded request from stdin ({"code", "inputs", "tmp", "read_roots",
"path"}; marshal is safe here because the parent wrote it), installs an audit hook, calls `main(**inputs)`
and writes one JSON object to the saved stdout: {"ok": true, "result": ...} or {"ok": false, "kind", "error"}.

The audit hook is one layer of several (see sandbox.py): it refuses sockets, process creation, signals,
native code loading, rlimit changes, and file access outside the temp dir (reads are also allowed under
the interpreter's prefix and site-packages so installed pure-Python packages such as jieba import).
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False  # typing itself costs 20 ms of start-up per call
if TYPE_CHECKING:
    from typing import Any

NETWORK = "Network access is not allowed in the code sandbox"
PROCESS = "Starting processes is not allowed in the code sandbox"
NATIVE = "Loading native code is not allowed in the code sandbox"
SIGNAL = "Sending signals is not allowed in the code sandbox"
LIMITS = "Changing resource limits is not allowed in the code sandbox"

_PROCESS_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.exec",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "pty.spawn",
        "os.putenv",
        "os.unsetenv",
    }
)
_SIGNAL_EVENTS = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})
_NATIVE_EVENTS = frozenset(
    {
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.cdata",
        "code.__new__",
        "sqlite3.enable_load_extension",
        "sqlite3.load_extension",
    }
)
# Libraries that open files in C, past the "open" event: their path must be a plain one in the temp dir.
_C_FILE_EVENTS = frozenset({"sqlite3.connect", "dbm.open"})
_LIMIT_EVENTS = frozenset({"resource.setrlimit", "resource.prlimit"})
# Modules whose only use here would be to get around the hook (native calls, raw process creation).
_BLOCKED_IMPORTS = frozenset(
    {
        "_ctypes",
        "ctypes",
        "_posixsubprocess",
        "_xxsubinterpreters",
        "_testcapi",
        "_testinternalcapi",
        "_tkinter",
    }
)
_PATH_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.chdir"})
_WRITE_PATH_EVENTS = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "os.utime",
        "os.symlink",
        "os.link",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.copytree",
        "shutil.move",
        "os.setxattr",
        "os.removexattr",
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Discard:
    """Stands in for stdout/stderr: user prints are dropped, as Dify drops them."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {
    0x22: '\\"',
    0x5C: "\\\\",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x08: "\\b",
    0x0C: "\\f",
}
_INFINITY = float("inf")


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    if isinstance(key, int | float):
        return _dumps(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _dumps(value: object) -> str:
    """json.dumps(value, ensure_ascii=False, allow_nan=False) for JSON types, without importing json."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (_INFINITY, -_INFINITY):
            raise ValueError("Out of range float values are not JSON compliant")
        return float.__repr__(value)
    if isinstance(value, dict):
        return "{" + ",".join(_dumps(_key(k)) + ":" + _dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _TempdirFinder:
    """Points tempfile at the temp dir when user code imports it: its own probe writes a file, and cannot."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tempfile":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module = self._wrap(spec.loader.exec_module)  # type: ignore[method-assign]  # on this one loader instance only
                return spec
        return None

    def _wrap(self, run: Any) -> Any:
        def exec_module(module: Any) -> None:
            run(module)
            module.tempdir = self.tmp

        return exec_module


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _install_hook(tmp: str, read_roots: tuple[str, ...]) -> None:
    write_roots = (tmp,)
    read_ok = (tmp, *read_roots)
    realpath = os.path.realpath
    fsdecode = os.fsdecode

    def deny_path(path: object) -> None:
        raise PermissionError(f"File access outside the sandbox is not allowed: {fsdecode(path)}")  # type: ignore[arg-type]

    def check(path: object, write: bool) -> None:
        if isinstance(path, int) or path is None:
            return
        resolved = realpath(fsdecode(path))  # type: ignore[arg-type]
        if not _under(resolved, write_roots if write else read_ok):
            deny_path(path)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = (*args, None, None)[:3]
            write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
            )
            check(path, write)
        elif event.startswith("socket."):
            raise PermissionError(NETWORK)
        elif event == "import":
            if args and args[0] in _BLOCKED_IMPORTS:
                raise ImportError(f"Module {args[0]} is not allowed in the code sandbox")
        elif event in _PATH_EVENTS:
            check(args[0] if args else ".", False)
        elif event in _C_FILE_EVENTS:
            path = args[0] if args else None
            if path != ":memory:":
                if not isinstance(path, str | bytes) or fsdecode(path).startswith("file:"):
                    deny_path(path)
                check(path, True)
        elif event in _WRITE_PATH_EVENTS:
            for arg in args[:2]:
                if isinstance(arg, str | bytes):
                    check(arg, True)
        elif event in _PROCESS_EVENTS:
            raise PermissionError(PROCESS)
        elif event in _SIGNAL_EVENTS:
            raise PermissionError(SIGNAL)
        elif event in _NATIVE_EVENTS:
            raise PermissionError(NATIVE)
        elif event in _LIMIT_EVENTS:
            raise PermissionError(LIMITS)

    sys.addaudithook(hook)


def _user_line(exc: BaseException) -> int | None:
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<code>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    line = _user_line(exc)
    return f"{text} (line {line})" if line else text


def _run(request: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(request["code"], "<code>", "exec"), namespace)  # noqa: S102 - running user code is the point
        main = namespace.get("main")
        if not callable(main):
            return {"ok": False, "kind": "invalid_result", "error": "The code must define a function main"}
        result = main(**request["inputs"])
        if not isinstance(result, dict):
            kind = type(result).__name__
            return {"ok": False, "kind": "invalid_result", "error": f"main must return a dict, got {kind}"}
        return {"ok": True, "result": result}
    except MemoryError:
        return {"ok": False, "kind": "memory", "error": "Memory limit exceeded"}
    except RecursionError as e:
        return {"ok": False, "kind": "exception", "error": _describe(e)}
    except BaseException as e:
        return {"ok": False, "kind": "exception", "error": _describe(e)}


def boot(request: dict[str, Any]) -> None:
    """Run one request; the parent sends this module compiled, with the request, as marshal data on stdin."""
    sys.stdin.close()
    reply_fd = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    sys.stdout = sys.stderr = _Discard()
    sys.path.extend(request["path"])
    os.chdir(request["tmp"])
    sys.meta_path.insert(0, _TempdirFinder(request["tmp"]))
    _install_hook(request["tmp"], tuple(request["read_roots"]))
    reply = _run(request)
    try:
        data = _dumps(reply)
    except MemoryError:
        data = _dumps({"ok": False, "kind": "memory", "error": "Memory limit exceeded"})
    except (TypeError, ValueError, RecursionError) as e:
        data = _dumps({"ok": False, "kind": "invalid_result", "error": f"The result is not JSON: {e}"})
    # A lone surrogate becomes a \\udXXX escape, which JSON allows.
    view = memoryview(data.encode("utf-8", "backslashreplace"))
    while view:
        view = view[os.write(reply_fd, view) :]
    os.close(reply_fd)


if __name__ == "__main__":
    boot(marshal.loads(sys.stdin.buffer.read()))  # noqa: S302 - written by our parent process
