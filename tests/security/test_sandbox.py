"""The code-node sandbox: results as Dify gives them, and every escape attempt ending in a clean SandboxError."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from openify.security.errors import OutputLimitError
from openify.security.isolation import IsolationLevel
from openify.security.sandbox import Language, Sandbox, SandboxError
from openify.settings import SandboxSettings

REPO = Path(__file__).resolve().parents[2]
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
# uids are host-wide: a range of our own, so another test run on this host cannot blur the leftovers check.
UID_BASE = 1_870_000 + (os.getpid() % 100) * 1000


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    limits = SandboxSettings(cpu_time_s=2, wall_time_s=4.0, memory_mb=256, max_output_bytes=100_000, uid_base=UID_BASE)
    return Sandbox(limits)


@pytest.fixture
def listener() -> Iterator[int]:
    """An open TCP port on loopback that accepts connections, to prove the sandbox cannot reach it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()
    assert accepted == [], "the sandboxed code reached the server"


def fails(sandbox: Sandbox, language: Language, code: str, inputs: dict[str, Any] | None = None) -> SandboxError:
    with pytest.raises(SandboxError) as info:
        sandbox.run(language, code, inputs or {})
    return info.value


def still_works(sandbox: Sandbox) -> None:
    """The server is unharmed: a new run works and no process of a sandbox uid is left behind."""
    assert sandbox.run("python3", "def main(x):\n    return {'x': x + 1}", {"x": 1}) == {"x": 2}
    assert sandbox_processes() == []


def sandbox_processes() -> list[str]:
    base, left = UID_BASE, []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        uid = int(text.split("\nUid:\t", 1)[1].split("\t", 1)[0])
        if base <= uid < base + 1000:
            left.append(text.split("\n", 1)[0])
    return left


# --- results ----------------------------------------------------------------------------------------
def test_python_round_trip_with_cjk(sandbox: Sandbox) -> None:
    code = (
        "def main(name: str, n: int) -> dict:\n    return {'greeting': '你好, ' + name, 'n': n * 2, 'list': [n, None]}"
    )
    assert sandbox.run("python3", code, {"name": "世界", "n": 21}) == {
        "greeting": "你好, 世界",
        "n": 42,
        "list": [21, None],
    }


@needs_node
def test_javascript_round_trip_with_cjk(sandbox: Sandbox) -> None:
    code = "function main({name, n}) {\n  return {greeting: '你好, ' + name, n: n * 2, obj: {ok: true}};\n}"
    assert sandbox.run("javascript", code, {"name": "世界", "n": 21}) == {
        "greeting": "你好, 世界",
        "n": 42,
        "obj": {"ok": True},
    }


async def test_arun_does_not_block_the_loop(sandbox: Sandbox) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    code = "import time\ndef main(a):\n    time.sleep(0.3)\n    return {'a': a}"
    results = await asyncio.gather(*(sandbox.arun("python3", code, {"a": i}) for i in range(3)))
    ticker.cancel()
    assert [r["a"] for r in results] == [0, 1, 2]
    assert ticks >= 10


def test_missing_node_is_a_clear_error() -> None:
    e = fails(Sandbox(SandboxSettings(node_path="/nonexistent/node")), "javascript", "function main() { return {}; }")
    assert e.kind == "unavailable" and "Node.js" in str(e)


def test_runs_from_worker_threads_at_once(sandbox: Sandbox) -> None:
    code = "def main(i):\n    return {'i': i * i}"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: sandbox.run("python3", code, {"i": i}), range(8)))
    assert [r["i"] for r in results] == [i * i for i in range(8)]


def test_installed_packages_import(sandbox: Sandbox) -> None:
    code = "import jieba\ndef main(text):\n    return {'words': jieba.lcut(text)}"
    assert sandbox.run("python3", code, {"text": "我来到北京清华大学"}) == {"words": ["我", "来到", "北京", "清华大学"]}


def test_tempfile_points_at_the_temp_dir(sandbox: Sandbox) -> None:
    code = "import tempfile, os\ndef main():\n    return {'t': tempfile.gettempdir(), 'cwd': os.getcwd()}"
    out = sandbox.run("python3", code, {})
    assert out["t"] == out["cwd"]


def test_print_is_ignored(sandbox: Sandbox) -> None:
    assert sandbox.run("python3", "def main():\n    print('noise')\n    return {'ok': 1}", {}) == {"ok": 1}


# --- user errors --------------------------------------------------------------------------------------
def test_python_exception_names_type_message_and_line(sandbox: Sandbox) -> None:
    e = fails(sandbox, "python3", "def main():\n    x = 1\n    raise ValueError('坏了')\n")
    assert str(e) == "ValueError: 坏了 (line 3)"
    assert e.kind == "exception"


@needs_node
def test_javascript_exception_names_type_message_and_line(sandbox: Sandbox) -> None:
    e = fails(sandbox, "javascript", "function main() {\n  const x = 1;\n  throw new TypeError('bad');\n}")
    assert str(e) == "TypeError: bad (line 3)"


def test_python_syntax_error(sandbox: Sandbox) -> None:
    assert "SyntaxError" in str(fails(sandbox, "python3", "def main(:\n    return {}"))


@pytest.mark.parametrize(
    ("language", "code", "got"),
    [
        ("python3", "def main():\n    return [1, 2]", "list"),
        ("python3", "def main():\n    return None", "NoneType"),
        pytest.param("javascript", "function main() { return [1, 2]; }", "array", marks=needs_node),
        pytest.param("javascript", "function main() { return 'x'; }", "string", marks=needs_node),
    ],
)
def test_non_dict_result_is_refused(sandbox: Sandbox, language: Language, code: str, got: str) -> None:
    e = fails(sandbox, language, code)
    assert e.kind == "invalid_result" and got in str(e)


def test_missing_main(sandbox: Sandbox) -> None:
    assert "main" in str(fails(sandbox, "python3", "x = 1"))


# --- escapes: network -----------------------------------------------------------------------------------
def test_python_socket_to_open_loopback_port_is_refused(sandbox: Sandbox, listener: int) -> None:
    code = f"import socket\ndef main():\n    socket.create_connection(('127.0.0.1', {listener}), timeout=1)\n"
    assert "Network access is not allowed in the code sandbox" in str(fails(sandbox, "python3", code))
    still_works(sandbox)


def test_python_urllib_is_refused(sandbox: Sandbox, listener: int) -> None:
    code = f"import urllib.request\ndef main():\n    urllib.request.urlopen('http://127.0.0.1:{listener}/')\n"
    assert "Network access is not allowed" in str(fails(sandbox, "python3", code))


@needs_node
def test_node_http_is_refused(sandbox: Sandbox, listener: int) -> None:
    code = f"function main() {{ require('http').get('http://127.0.0.1:{listener}/'); return {{}}; }}"
    assert "Network access is not allowed in the code sandbox" in str(fails(sandbox, "javascript", code))
    code = f"function main() {{ fetch('http://127.0.0.1:{listener}/'); return {{}}; }}"
    assert "Network access is not allowed" in str(fails(sandbox, "javascript", code))
    code = "function main() { return {p: typeof process, m: typeof module}; }"
    assert sandbox.run("javascript", code, {}) == {"p": "undefined", "m": "undefined"}


@pytest.mark.skipif(os.geteuid() != 0, reason="kernel layers need root here")
@pytest.mark.parametrize("language", ["python3", pytest.param("javascript", marks=needs_node)])
def test_root_server_runs_code_under_its_own_uid(sandbox: Sandbox, language: Language) -> None:
    assert sandbox.isolation == IsolationLevel.BUBBLEWRAP
    py = "def main():\n    return {'uid': __import__('os').getuid()}"
    js = "function main() { return {uid: require('fs').statSync('.').uid}; }"  # its temp dir is chowned to it
    uid = sandbox.run(language, py if language == "python3" else js, {})["uid"]
    assert UID_BASE <= uid < UID_BASE + 1000


# --- escapes: files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/etc/passwd", str(REPO / "pyproject.toml"), "/proc/self/environ", "/proc/1/environ"])
def test_python_file_reads_outside_tmp_are_refused(sandbox: Sandbox, path: str) -> None:
    e = fails(sandbox, "python3", f"def main():\n    return {{'data': open({path!r}).read()}}")
    assert f"File access outside the sandbox is not allowed: {path}" in str(e)


def test_python_symlink_and_listdir_tricks_are_refused(sandbox: Sandbox) -> None:
    code = "import os\ndef main():\n    os.symlink('/etc/passwd', 'p')\n    return {'d': open('p').read()}"
    assert "not allowed" in str(fails(sandbox, "python3", code))
    code = "import os\ndef main():\n    return {'d': os.listdir('/root')}"
    assert "not allowed" in str(fails(sandbox, "python3", code))


@pytest.mark.parametrize(
    "opener",
    ["sqlite3.connect({path!r})", "sqlite3.connect('file:' + {path!r} + '?mode=ro', uri=True)"],
)
def test_python_c_level_file_openers_are_refused(sandbox: Sandbox, opener: str) -> None:
    path = str(REPO / "pyproject.toml")
    code = f"import sqlite3\ndef main():\n    {opener.format(path=path)}\n    return {{}}"
    assert "File access outside the sandbox is not allowed" in str(fails(sandbox, "python3", code))
    code = (
        "import sqlite3\ndef main():\n    return {'n': sqlite3.connect(':memory:').execute('select 1').fetchone()[0]}"
    )
    assert sandbox.run("python3", code, {}) == {"n": 1}


def test_python_environment_is_scrubbed(sandbox: Sandbox) -> None:
    os.environ["OPENIFY_TEST_SECRET"] = "s3cret"  # noqa: TID251 - the secret the child must not see
    try:
        code = "import os\ndef main():\n    return {'env': dict(os.environ)}"
        env = sandbox.run("python3", code, {})["env"]
    finally:
        del os.environ["OPENIFY_TEST_SECRET"]  # noqa: TID251
    assert "OPENIFY_TEST_SECRET" not in env and set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_CTYPE", "PWD"}


def test_python_can_read_its_own_tmp_dir_which_is_removed_after(sandbox: Sandbox) -> None:
    code = "import os\ndef main():\n    return {'cwd': os.getcwd(), 'files': os.listdir('.')}"
    out = sandbox.run("python3", code, {})
    assert out["files"] == [] and "openify-code-" in out["cwd"]
    assert not Path(out["cwd"]).exists()


def test_python_cannot_write_files(sandbox: Sandbox) -> None:
    code = "def main():\n    open('/work/evil', 'w').write('x')\n    return {}"
    assert "not allowed" in str(fails(sandbox, "python3", code))
    code = "def main():\n    with open('lib.so', 'wb') as f:\n        f.write(b'\\x7fELF' * 1000)\n    return {}"
    assert "File too large" in str(fails(sandbox, "python3", code))


@needs_node
@pytest.mark.parametrize("path", ["/etc/passwd", str(REPO / "pyproject.toml"), "/proc/self/environ"])
def test_node_file_reads_outside_tmp_are_refused(sandbox: Sandbox, path: str) -> None:
    e = fails(
        sandbox, "javascript", f"function main() {{ return {{d: require('fs').readFileSync({path!r}, 'utf8')}}; }}"
    )
    assert "Access to this API has been restricted" in str(e)


@needs_node
def test_node_child_process_is_refused(sandbox: Sandbox) -> None:
    code = "function main() { require('child_process').execSync('id'); return {}; }"
    assert "not allowed" in str(fails(sandbox, "javascript", code))


# --- escapes: processes, CPU, wall time, memory ------------------------------------------------------------
def test_python_fork_bomb_ends_cleanly(sandbox: Sandbox) -> None:
    code = "import os\ndef main():\n    while True:\n        os.fork()\n"
    assert "Starting processes is not allowed" in str(fails(sandbox, "python3", code))
    code = "import subprocess\ndef main():\n    subprocess.run(['sh', '-c', ':(){ :|:& };:'])\n    return {}"
    assert "not allowed" in str(fails(sandbox, "python3", code))
    code = "import ctypes\ndef main():\n    ctypes.CDLL(None).fork()\n    return {}"
    assert "not allowed" in str(fails(sandbox, "python3", code))
    still_works(sandbox)


def test_python_cannot_signal_the_server(sandbox: Sandbox) -> None:
    code = f"import os, signal\ndef main():\n    os.kill({os.getpid()}, signal.SIGTERM)\n    return {{}}"
    assert "Sending signals is not allowed" in str(fails(sandbox, "python3", code))


def test_python_cannot_raise_its_limits(sandbox: Sandbox) -> None:
    code = "import resource\ndef main():\n    resource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\n    return {}"
    assert "not allowed" in str(fails(sandbox, "python3", code))


@needs_node
def test_node_fork_bomb_ends_cleanly(sandbox: Sandbox) -> None:
    code = "function main() { const w = require('worker_threads'); while (true) new w.Worker('1', {eval: true}); }"
    assert "not allowed" in str(fails(sandbox, "javascript", code))
    still_works(sandbox)


@pytest.mark.parametrize("language", ["python3", pytest.param("javascript", marks=needs_node)])
def test_infinite_loop_hits_cpu_limit(sandbox: Sandbox, language: Language) -> None:
    code = (
        "def main():\n    while True:\n        pass" if language == "python3" else "function main() { while (true) {} }"
    )
    e = fails(sandbox, language, code)
    assert e.kind in ("cpu_time", "wall_time")
    assert "exceeded the CPU time limit of 2 s" in str(e) or "exceeded the time limit" in str(e)
    still_works(sandbox)


@pytest.mark.parametrize("language", ["python3", pytest.param("javascript", marks=needs_node)])
def test_sleep_hits_wall_time_limit(sandbox: Sandbox, language: Language) -> None:
    py = "import time\ndef main():\n    time.sleep(60)\n    return {}"
    js = "function main() { return new Promise(() => setTimeout(() => {}, 60000)); }"
    e = fails(sandbox, language, py if language == "python3" else js)
    assert str(e) == "Code execution exceeded the time limit of 4 s" and e.kind == "wall_time"
    still_works(sandbox)


@pytest.mark.parametrize("language", ["python3", pytest.param("javascript", marks=needs_node)])
def test_memory_bomb_hits_memory_limit(sandbox: Sandbox, language: Language) -> None:
    py = "def main():\n    x = []\n    while True:\n        x.append(bytearray(10**7))"
    js = "function main() { const a = []; while (true) a.push(new Array(1e6).fill(1.5)); }"
    e = fails(sandbox, language, py if language == "python3" else js)
    assert str(e) == "Memory limit exceeded" and e.kind == "memory"
    still_works(sandbox)


# --- output limits ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["python3", pytest.param("javascript", marks=needs_node)])
def test_huge_output_is_refused(sandbox: Sandbox, language: Language) -> None:
    py = "def main():\n    return {'s': ['x' * 1000] * 1000}"
    js = "function main() { return {s: Array(1000).fill('x'.repeat(1000))}; }"
    e = fails(sandbox, language, py if language == "python3" else js)
    assert str(e) == "Code output exceeds the limit of 100000 bytes"


FLOOD = (
    "import os\ndef main():\n    while True:\n        for fd in range(10):\n            try:\n"
    "                os.write(fd, b'x' * 65536)\n            except OSError:\n                pass"
)


def test_output_flood_on_any_fd_is_capped(sandbox: Sandbox) -> None:
    assert fails(sandbox, "python3", FLOOD).kind == "output_size"
    still_works(sandbox)


async def test_arun_enforces_wall_time_and_output_cap(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError) as info:
        await sandbox.arun("python3", "import time\ndef main():\n    time.sleep(60)", {})
    assert info.value.kind == "wall_time"
    with pytest.raises(SandboxError) as info:
        await sandbox.arun("python3", FLOOD, {})
    assert info.value.kind == "output_size"
    assert await sandbox.arun("python3", "def main():\n    return {'ok': True}", {}) == {"ok": True}
    assert sandbox_processes() == []


@pytest.mark.parametrize("language", ["python3", pytest.param("javascript", marks=needs_node)])
def test_deep_nesting_is_refused(sandbox: Sandbox, language: Language) -> None:
    py = "def main():\n    d = {}\n    for _ in range(10):\n        d = {'d': d}\n    return d"
    js = "function main() { let d = {}; for (let i = 0; i < 10; i++) d = {d}; return d; }"
    e = fails(sandbox, language, py if language == "python3" else js)
    assert isinstance(e, OutputLimitError) and str(e) == "Depth limit 5 reached, object too deep."


def test_very_deep_nesting_does_not_crash_the_server(sandbox: Sandbox) -> None:
    code = "def main():\n    d = []\n    for _ in range(100000):\n        d = [d]\n    return {'d': d}"
    assert fails(sandbox, "python3", code).kind in ("invalid_result", "output_limit", "exception")


def test_dify_string_and_number_limits(sandbox: Sandbox) -> None:
    small = Sandbox(SandboxSettings(max_string_length=10, uid_base=UID_BASE + 500))
    e = fails(small, "python3", "def main():\n    return {'s': 'x' * 11}")
    assert str(e) == "The length of output variable `s` must be less than 10 characters"
    e = fails(sandbox, "python3", "def main():\n    return {'n': 2**64}")
    assert "Output variable `n` is out of range" in str(e)
    e = fails(sandbox, "python3", "def main():\n    return {'nan': float('nan')}")
    assert e.kind == "invalid_result"
