"""Escape attempts against isolation.py and the code sandbox, with no audit hook or permission model in the way.

`python -m tests.security.isolation_probe DATA_DIR [--weak]` runs every attempt from a server-like parent
(this process: a secret in its environment, a data directory with a file and an SQLite database, a loopback
listener, an inheritable descriptor) and prints one JSON object {attempt: "blocked: ..." | "LEAK: ..."}.
The tests run it as root in-process and as uid 65534 under setpriv.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from openify.security.errors import IsolationUnavailable
from openify.security.isolation import Confinement, spawn
from openify.security.sandbox import Sandbox, SandboxError
from openify.settings import SandboxSettings

SECRET = "s3cret-万岁-4f1c"
ENV_NAME = "OPENIFY_ADMIN_TOKEN"

# Runs inside the confined process: each attempt prints what it got. Plain Python, no hook installed.
PROBE = r"""
import ctypes, json, os, signal, socket, sqlite3, sys
a = json.loads(sys.argv[1])
secret, out = a["secret"], {}
def attempt(name, fn):
    try:
        got = fn()
    except BaseException as e:
        out[name] = f"blocked: {type(e).__name__}: {e}"[:200]
        return
    text = got if isinstance(got, str) else repr(got)
    out[name] = ("LEAK: " if got is not False and (secret in text or got is True) else "blocked: ") + text[:200]
def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")
def dir_fd_symlink():
    os.symlink(a["secret_file"], "link")
    d = os.open(".", os.O_RDONLY)
    fd = os.open("link", os.O_RDONLY, dir_fd=d)
    return os.read(fd, 1000).decode()
def attach():
    c = sqlite3.connect(":memory:")
    c.execute(f"ATTACH 'file:{a['db']}?immutable=1' AS x")
    return str(c.execute("select v from x.t").fetchall())
def pidfd_signal():
    signal.pidfd_send_signal(os.pidfd_open(a["server_pid"]), 0)
    return True
def pidfd_parent():
    signal.pidfd_send_signal(os.pidfd_open(os.getppid()), 0)
    return True
def kill_server():
    os.kill(a["server_pid"], 0)
    return True
def connect():
    socket.create_connection(("127.0.0.1", a["port"]), timeout=2).close()
    return True
def caps():
    eff = [l for l in read("/proc/self/status").splitlines() if l.startswith("CapEff")][0]
    return int(eff.split()[1], 16) != 0
libc = ctypes.CDLL(None, use_errno=True)
def ptrace():
    return libc.ptrace(16, a["server_pid"], 0, 0) == 0  # PTRACE_ATTACH
def unshare():
    return libc.unshare(0x10000000) == 0  # CLONE_NEWUSER
def server_in_proc():
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    return str(a["server_pid"]) in pids or len(pids) > 5
def inherited_fds():
    got = []
    for f in map(int, os.listdir("/proc/self/fd")):
        try:
            got.append(os.pread(f, 100, 0).decode(errors="replace") if f > 2 else "")
        except OSError:
            pass
    return str(got)
def write_usr():
    with open("/usr/openify-escape", "w") as f:
        f.write("x")
    os.remove("/usr/openify-escape")
    return True
attempt("inherited descriptor", inherited_fds)  # first: later attempts open descriptors of their own
attempt("read data file", lambda: read(a["secret_file"]))
attempt("list data dir", lambda: str(os.listdir(a["data_dir"])))
attempt("os.open dir_fd through a symlink", dir_fd_symlink)
attempt("sqlite ATTACH immutable=1", attach)
attempt("pidfd_send_signal to the server", pidfd_signal)
attempt("pidfd_send_signal to the parent", pidfd_parent)
attempt("kill the server", kill_server)
attempt("/proc/<server>/environ", lambda: read(f"/proc/{a['server_pid']}/environ"))
attempt("/proc/<ppid>/environ", lambda: read(f"/proc/{os.getppid()}/environ"))
attempt("own environment", lambda: str(dict(os.environ)))
attempt("/etc/shadow", lambda: read("/etc/shadow") is not None)  # any read of it is a leak
attempt("capabilities", caps)
attempt("connect to the server's loopback", connect)
attempt("ptrace the server", ptrace)
attempt("unshare a user namespace", unshare)
attempt("server visible in /proc", server_in_proc)
attempt("write outside its folder", write_usr)
print(json.dumps(out))
"""


def make_server_state(data_dir: Path) -> dict[str, Any]:
    """A data directory with a secret file and database, a loopback listener, a secret env var and open fd."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file = data_dir / "secret.txt"
    secret_file.write_text(SECRET, encoding="utf-8")
    db = data_dir / "openify.db"
    with sqlite3.connect(db) as c:
        c.execute("create table if not exists t (v text)")
        c.execute("insert into t values (?)", (SECRET,))
    c.close()
    fd = os.open(secret_file, os.O_RDONLY)
    os.set_inheritable(fd, True)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    os.environ[ENV_NAME] = SECRET  # noqa: TID251 - the server's secret the child must not see
    return {
        "secret": SECRET,
        "secret_file": str(secret_file.resolve()),
        "data_dir": str(data_dir.resolve()),
        "db": str(db.resolve()),
        "server_pid": os.getpid(),
        "port": listener.getsockname()[1],
        "fd": fd,
        "_listener": listener,
    }


async def probe_isolation(state: dict[str, Any], *, weak: bool = False) -> dict[str, str]:
    """Run PROBE confined, as a Dify plugin or MCP server would be."""
    args = {k: v for k, v in state.items() if not k.startswith("_")}
    folder = Path(tempfile.mkdtemp(prefix="openify-probe-"))
    os.chmod(folder, 0o777)  # noqa: S103 - as root the probe runs as nobody and writes its symlink here
    prefixes = {Path(p) for p in (sys.prefix, sys.base_prefix)}
    c = Confinement(
        argv=[sys.executable, "-I", "-S", "-c", PROBE, json.dumps(args)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        ro_paths=sorted(prefixes),
        memory_mb=512,
        cpu_time_s=10,
        max_processes=32,
        bwrap_path="/nonexistent/bwrap" if weak else "bwrap",
        allow_weak=weak,
    )
    proc = await spawn(c, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    try:
        result: dict[str, str] = json.loads(out)
    except ValueError as e:
        raise AssertionError(f"probe failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}") from e
    return result


# Node with no permission model (as on Node < 20): only the isolation stands between it and the files.
NODE_PROBE = r"""
const fs = require('fs'), a = JSON.parse(process.argv[1]), out = {};
for (const [name, path] of [['node read data file', a.secret_file], ['node /proc/<server>/environ',
    `/proc/${a.server_pid}/environ`], ['node /etc/shadow', '/etc/shadow']]) {
  try {
    const t = fs.readFileSync(path, 'utf8');
    out[name] = (t.includes(a.secret) || path === '/etc/shadow' ? 'LEAK: ' : 'blocked: ') + t.slice(0, 100);
  }
  catch (e) { out[name] = 'blocked: ' + e.message.slice(0, 150); }
}
try { process.kill(a.server_pid, 0); out['node signal the server'] = 'LEAK: signalled'; }
catch (e) { out['node signal the server'] = 'blocked: ' + e.message; }
console.log(JSON.stringify(out));
"""


async def probe_node(state: dict[str, Any], node: str, *, weak: bool = False) -> dict[str, str]:
    """Run NODE_PROBE confined, with no permission model."""
    args = {k: v for k, v in state.items() if not k.startswith("_")}
    folder = Path(tempfile.mkdtemp(prefix="openify-probe-"))
    node_path = os.path.realpath(node)
    prefix = Path(node_path).parent.parent
    c = Confinement(
        argv=[node_path, "-e", NODE_PROBE, json.dumps(args)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin"},
        ro_paths=[] if str(prefix).startswith("/usr") else [prefix],
        bwrap_path="/nonexistent/bwrap" if weak else "bwrap",
        allow_weak=weak,
    )
    proc = await spawn(c, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    try:
        result: dict[str, str] = json.loads(out)
    except ValueError as e:
        raise AssertionError(f"node probe failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}") from e
    return result


OUTBOUND_PROBE = (
    "import json, socket, sys\nout = {}\n"
    "for name, addr in json.loads(sys.argv[1]).items():\n"
    "    try:\n        socket.create_connection(tuple(addr), timeout=5).close(); out[name] = 'connected'\n"
    "    except OSError as e:\n        out[name] = str(e)\nprint(json.dumps(out))"
)


def host_address() -> str:
    """This host's address on its network (no packet is sent: connecting a UDP socket picks the interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return str(s.getsockname()[0])


async def probe_outbound(state: dict[str, Any]) -> dict[str, str]:
    """network="outbound": connect to the server's loopback listener (directly and through slirp's gateway)
    and to a listener on the host's network address, which stands in for the internet."""
    public = socket.create_server(("0.0.0.0", 0))  # a host on the network, for this probe only
    targets = {
        "loopback": ["127.0.0.1", state["port"]],
        "host loopback via gateway": ["10.0.2.2", state["port"]],
        "network": [host_address(), public.getsockname()[1]],
    }
    folder = Path(tempfile.mkdtemp(prefix="openify-probe-"))
    c = Confinement(
        argv=[sys.executable, "-I", "-S", "-c", OUTBOUND_PROBE, json.dumps(targets)],
        cwd=folder,
        env={"PATH": "/usr/bin"},
        ro_paths=sorted({Path(sys.base_prefix), Path(sys.prefix)}),
        network="outbound",
    )
    try:
        proc = await spawn(c, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except IsolationUnavailable as e:
        return {"outbound": f"unavailable: {e}"}
    finally:
        public.close()
    got: dict[str, str] = json.loads(out or b"{}") or {"outbound": f"failed: {err.decode(errors='replace')}"}
    return {
        "outbound": got.get("network", "missing"),
        "outbound: loopback": ("LEAK: " if got.get("loopback") == "connected" else "blocked: ") + got["loopback"],
        "outbound: host loopback via gateway": (
            "LEAK: " if got.get("host loopback via gateway") == "connected" else "blocked: "
        )
        + got["host loopback via gateway"],
    }


# Code-node escapes, run through Sandbox (audit hook and node permission model included, as in production).
CODE_ESCAPES: dict[str, tuple[str, str]] = {
    "python dir_fd symlink": (
        "python3",
        "import os\ndef main(a):\n    os.symlink(a['secret_file'], 'l')\n    d = os.open('.', os.O_RDONLY)\n"
        "    return {'v': os.read(os.open('l', os.O_RDONLY, dir_fd=d), 999).decode()}",
    ),
    "python sqlite ATTACH": (
        "python3",
        "import sqlite3\ndef main(a):\n    c = sqlite3.connect(':memory:')\n"
        "    c.execute(f\"ATTACH 'file:{a['db']}?immutable=1' AS x\")\n"
        "    return {'v': str(c.execute('select v from x.t').fetchall())}",
    ),
    "python pidfd_send_signal": (
        "python3",
        "import os, signal\ndef main(a):\n    signal.pidfd_send_signal(os.pidfd_open(os.getppid()), 9)\n"
        "    signal.pidfd_send_signal(os.pidfd_open(a['server_pid']), 9)\n    return {'v': 'signalled'}",
    ),
    "python /proc/ppid/environ": (
        "python3",
        "import os\ndef main(a):\n    fd = os.open(f\"/proc/{a['server_pid']}/environ\", os.O_RDONLY)\n"
        "    return {'v': os.read(fd, 99999).decode(errors='replace')}",
    ),
    "python /etc/shadow": ("python3", "def main(a):\n    return {'v': open('/etc/shadow').read()}"),
    "python marshal code object": (
        "python3",
        "import marshal\ndef main(a):\n    src = compile(f\"v = open({a['secret_file']!r}).read()\", 'x', 'exec')\n"
        "    g = {}\n    exec(marshal.loads(marshal.dumps(src)), g)\n    return {'v': g['v']}",
    ),
    "python ctypes": (
        "python3",
        "import ctypes\ndef main(a):\n    libc = ctypes.CDLL(None)\n"
        "    return {'v': str(libc.kill(a['server_pid'], 0) == 0 and 'signalled')}",
    ),
    "python inherited fd": (
        "python3",
        "import os\ndef main(a):\n    return {'v': os.read(a['fd'], 999).decode()}",
    ),
    "javascript readFileSync": (
        "javascript",
        "function main(a) { return {v: require('fs').readFileSync(a.secret_file, 'utf8')}; }",
    ),
    "javascript /proc environ": (
        "javascript",
        "function main(a) { return {v: require('fs').readFileSync('/proc/' + a.server_pid + '/environ', 'utf8')}; }",
    ),
    "javascript inherited fd": (
        "javascript",
        "function main(a) { const b = Buffer.alloc(999); const n = require('fs').readSync(a.fd, b);"
        " return {v: b.toString('utf8', 0, n)}; }",
    ),
}


def probe_code_nodes(state: dict[str, Any], limits: SandboxSettings) -> dict[str, str]:
    """Every CODE_ESCAPES entry through Sandbox.run: "blocked: ..." or "LEAK: ..."."""
    sandbox, args, out = Sandbox(limits), {k: v for k, v in state.items() if not k.startswith("_")}, {}
    for name, (language, code) in CODE_ESCAPES.items():
        try:
            got = str(sandbox.run(language, code, {"a": args} if language == "python3" else args))  # type: ignore[arg-type]
        except SandboxError as e:
            got = f"error: {e}"
        leaked = SECRET in got or "signalled" in got
        out[name] = ("LEAK: " if leaked else "blocked: ") + got[:200]
    try:
        os.kill(state["server_pid"], 0)
        out["server alive"] = "blocked: alive"
    except OSError as e:
        out["server alive"] = f"LEAK: {e}"
    return out


def main() -> None:
    data_dir, weak = Path(sys.argv[1]), "--weak" in sys.argv
    state = make_server_state(data_dir)
    limits = SandboxSettings(cpu_time_s=5, wall_time_s=20.0, uid_base=1_880_000 + os.getpid() % 100 * 1000)
    result = {"uid": str(os.getuid()), **asyncio.run(probe_isolation(state, weak=weak))}
    node = shutil.which("node")
    if node:
        result |= asyncio.run(probe_node(state, node, weak=weak))
    result |= {f"code: {k}": v for k, v in probe_code_nodes(state, limits).items()}
    if not weak:
        result |= asyncio.run(probe_outbound(state))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
