"""Issue 7 point 9, in one run: engine overhead per node (200-template chain, 10,000-item iteration), the same
through the run service (stored as it goes), code-node calls/s, 60 concurrent streaming runs of
start -> template -> end through the API of a real `openify serve` (p95 time to the first real event), and
what the event stream adds to a run's time. Run: python bench/workflow.py  (SQLite in a temp dir; same-run
baselines)

"First event" is measured on the client, from sending the request to receiving the first SSE frame that is
not Dify's `event: ping` keep-alive: a streamed run's first `data:` frame, `workflow_started`. The ping that
the server writes before the run starts is reported apart as "first byte": it shows only that the route
answered, not that the run began.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout, not an installed copy
sys.path.insert(0, str(ROOT / "bench"))

from workflow_engine import chain, iteration  # noqa: E402  # the engine bench's graphs

from openify.engine.graph import parse_graph  # noqa: E402
from openify.engine.runner import RunLimits, WorkflowRunner  # noqa: E402
from openify.plugins import build_registries  # noqa: E402
from openify.security.sandbox import Sandbox  # noqa: E402
from openify.settings import SandboxSettings  # noqa: E402

TARGET_NODE_US, TARGET_STREAM_PCT, TARGET_TTFB_MS = 200.0, 5.0, 100.0
CONCURRENT = 60


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def dsl_text(doc: dict[str, Any], name: str) -> str:
    doc = {**doc, "app": {"mode": "workflow", "name": name}, "kind": "app", "version": "0.3.1"}
    doc["workflow"] = {"features": {}, **doc["workflow"]}
    return yaml.safe_dump(doc)


async def engine_run(runner: WorkflowRunner) -> float:
    t0 = time.perf_counter()
    async for _ in runner.start({}).events():
        pass
    return time.perf_counter() - t0


async def bench_engine() -> None:
    r = build_registries()
    limits = RunLimits(max_steps=1_000_000, max_time_s=3600)
    runner = WorkflowRunner(parse_graph(chain(200)), r, limits=limits)
    await engine_run(runner)
    times = [await engine_run(runner) for _ in range(20)]
    per = statistics.median(times) / 202 * 1e6
    print(f"engine, chain of 200 templates: {per:.1f} us/node median (target < {TARGET_NODE_US:.0f})")
    runner = WorkflowRunner(parse_graph(iteration(10_000)), r, limits=limits)
    elapsed = await engine_run(runner)
    print(f"engine, 10,000-item iteration: {elapsed:.2f} s, {elapsed / 20_000 * 1e6:.1f} us/inner node")


async def bench_code_node() -> None:
    sandbox = Sandbox(SandboxSettings())
    code = "def main(x: int) -> dict:\n    return {'y': x * 2}\n"
    await sandbox.arun("python3", code, {"x": 1})
    n = 40
    t0 = time.perf_counter()
    for i in range(n):
        await sandbox.arun("python3", code, {"x": i})
    seq = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    await asyncio.gather(*(sandbox.arun("python3", code, {"x": i}) for i in range(n)))
    par = n / (time.perf_counter() - t0)
    print(f"code node (python3 sandbox): {seq:.1f} calls/s sequential, {par:.1f} calls/s with {n} concurrent")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIFY_")}  # noqa: TID251 - child env
        self.env["OPENIFY_LOG_LEVEL"] = "WARNING"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(  # noqa: S603 - our own console script
            [sys.executable, "-m", "openify.cli", *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        return out.stdout

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "openify.cli", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def __exit__(self, *_: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=20)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def import_app(self, text: str) -> dict[str, str]:
        path = self.data_dir / f"app-{time.monotonic_ns()}.yml"
        path.write_text(text)
        key = json.loads(self.cli("app", "import", str(path)))["api_key"]
        return {"Authorization": f"Bearer {key}"}


async def stream_once(
    client: httpx.AsyncClient, auth: dict[str, str], inputs: dict[str, Any]
) -> tuple[float, float, float, float]:
    """(first byte, first real event, last byte) in seconds after sending, and the run's own elapsed_time.
    The first real event is the first `data:` frame (pings carry no data): `workflow_started`."""
    t0 = time.perf_counter()
    first = started = 0.0
    body = {"inputs": inputs, "user": "bench", "response_mode": "streaming"}
    tail = b""
    async with client.stream("POST", "/v1/workflows/run", headers=auth, json=body) as r:
        async for chunk in r.aiter_bytes():
            now = time.perf_counter() - t0
            first = first or now
            tail = (tail + chunk)[-8192:]
            if not started and b"data: " in tail:
                started = now
    finished = json.loads(tail[tail.rindex(b"data: ") + 6 :].strip())
    return first, started, time.perf_counter() - t0, float(finished["data"]["elapsed_time"])


async def raw_stream(port: int, key: str, body: dict[str, Any]) -> tuple[float, float, float]:
    """One streaming run over a bare HTTP/1.1 connection: (first body byte, first real event, last byte).
    The first body byte is Dify's immediate `event: ping`; the first real event is the first `data:` frame,
    which must be `workflow_started`.

    A client this lean keeps the measurement about the server: at 60 concurrent streams on two shared CPUs,
    httpx's own per-request work dominated the figures."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(
        b"POST /v1/workflows/run HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "
        + key.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(data)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + data
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    first = started = 0.0
    seen = head = b""
    while chunk := await reader.read(65536):
        now = time.perf_counter() - t0
        first = first or now
        seen = (seen + chunk)[-65536:]
        head = head if len(head) > 4096 else head + chunk
        if not started and b"data: " in seen:  # the first data frame has begun: the time it arrived
            started = now
    first_frame = head[head.index(b"data: ") :]
    if b"workflow_started" not in first_frame[:300]:
        raise RuntimeError(f"the first real event is not workflow_started: {first_frame[:300]!r}")
    writer.close()
    if b"workflow_finished" not in seen:
        raise RuntimeError(f"stream did not finish: {seen[-300:]!r}")
    return first, started, time.perf_counter() - t0


async def raw_get(port: int, path: str, key: str | None = None) -> float:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = b"Authorization: Bearer " + key.encode() + b"\r\n" if key else b""
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + auth + b"Connection: close\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    return time.perf_counter() - t0


async def info_once(client: httpx.AsyncClient, auth: dict[str, str] | None) -> float:
    """GET /v1/info with a key, or /health without one: what any request costs on this machine."""
    t0 = time.perf_counter()
    r = await client.get("/v1/info", headers=auth) if auth else await client.get("/health")
    assert r.status_code == 200
    return time.perf_counter() - t0


async def bench_api() -> None:
    echo = {
        "workflow": {
            "graph": {
                "nodes": [
                    {
                        "id": "s",
                        "data": {
                            "type": "start",
                            "title": "S",
                            "variables": [
                                {"variable": "name", "label": "name", "type": "text-input", "required": True}
                            ],
                        },
                    },
                    {
                        "id": "t",
                        "data": {
                            "type": "template-transform",
                            "title": "T",
                            "template": "Hello {{ n }}",
                            "variables": [{"variable": "n", "value_selector": ["s", "name"]}],
                        },
                    },
                    {
                        "id": "e",
                        "data": {
                            "type": "end",
                            "title": "E",
                            "outputs": [{"variable": "o", "value_selector": ["t", "output"]}],
                        },
                    },
                ],
                "edges": [{"source": "s", "target": "t"}, {"source": "t", "target": "e"}],
            }
        }
    }
    with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp)) as server:
        auth = server.import_app(dsl_text(echo, "echo"))
        limits = httpx.Limits(max_connections=CONCURRENT + 10, max_keepalive_connections=CONCURRENT + 10)
        async with httpx.AsyncClient(base_url=server.base, timeout=120, limits=limits) as client:
            key = auth["Authorization"].split()[1]
            body = {"inputs": {"name": "warm"}, "user": "bench", "response_mode": "streaming"}
            await asyncio.gather(*(raw_stream(server.port, key, body) for _ in range(CONCURRENT)))
            base: list[float] = []
            health: list[float] = []
            ping, started, total = [], [], []
            for round_ in range(3):
                body = {"inputs": {"name": f"r{round_}"}, "user": "bench", "response_mode": "streaming"}
                got = await asyncio.gather(*(raw_stream(server.port, key, body) for _ in range(CONCURRENT)))
                ping += [g[0] for g in got]
                started += [g[1] for g in got]
                total += [g[2] for g in got]
                base += await asyncio.gather(*(raw_get(server.port, "/v1/info", key) for _ in range(CONCURRENT)))
                health += await asyncio.gather(*(raw_get(server.port, "/health") for _ in range(CONCURRENT)))
            print(
                f"API, {CONCURRENT} concurrent streaming start->template->end runs (3 rounds, live server, "
                f"bare HTTP/1.1 client):\n"
                f"  first real event (workflow_started, client-side) p50 {statistics.median(started) * 1e3:.1f} ms, "
                f"p95 {p95(started) * 1e3:.1f} ms (target < {TARGET_TTFB_MS:.0f}); whole stream p50 "
                f"{statistics.median(total) * 1e3:.1f} ms, p95 {p95(total) * 1e3:.1f} ms\n"
                f"  (first byte, Dify's immediate ping before the run starts: "
                f"p50 {statistics.median(ping) * 1e3:.1f} ms, p95 {p95(ping) * 1e3:.1f} ms)\n"
                f"  same-run baseline, {CONCURRENT} concurrent GET /v1/info: "
                f"p50 {statistics.median(base) * 1e3:.1f} ms, p95 {p95(base) * 1e3:.1f} ms; GET /health: "
                f"p50 {statistics.median(health) * 1e3:.1f} ms, p95 {p95(health) * 1e3:.1f} ms"
            )
            first_httpx = []
            for _ in range(2):
                got2 = await asyncio.gather(*(stream_once(client, auth, {"name": "h"}) for _ in range(CONCURRENT)))
                first_httpx += [g[1] for g in got2]
            print(f"  (the same through one httpx.AsyncClient: first real event p95 {p95(first_httpx) * 1e3:.1f} ms)")
            # What the event stream adds to a run: each workflow streamed vs blocking (same server, alternated).
            chain_auth = server.import_app(dsl_text(chain(200), "chain"))
            echo_label = "start -> template -> end (the runs above)"
            await stream_overhead(server.port, auth, echo_label, pairs=400, inputs={"name": "s"})
            chain_label = "200-template chain (trivial nodes: the worst case)"
            await stream_overhead(server.port, chain_auth, chain_label, pairs=300)
            code_auth = server.import_app(dsl_text(code_chain(3), "code"))
            await stream_overhead(server.port, code_auth, "start -> 3 code nodes -> end (nodes doing real work)")


async def raw_run(port: int, key: str, streaming: bool, inputs: dict[str, Any] | None = None) -> tuple[float, float]:
    """One run over a bare HTTP/1.1 connection, blocking or streaming: (request to last byte, the run's own
    elapsed_time). The same lean client for both modes, so the client's own work on the shared CPUs does not
    weigh on one mode more than the other (httpx parsing a stream as it arrives did)."""
    mode = "streaming" if streaming else "blocking"
    body = json.dumps({"inputs": inputs or {}, "user": "bench", "response_mode": mode})
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /v1/workflows/run HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
    )
    await writer.drain()
    raw = await reader.read(-1)
    wall = time.perf_counter() - t0
    writer.close()
    payload = raw[raw.index(b"\r\n\r\n") + 4 :]
    if streaming:  # each yield of the stream is one HTTP chunk, so no frame is split by chunk sizes
        last = payload[payload.rindex(b"data: ") + 6 :]
        finished = json.loads(last[: last.index(b"\n\n")])
    else:
        finished = json.loads(payload)
    assert finished["data"]["status"] == "succeeded", finished
    return wall, float(finished["data"]["elapsed_time"])


async def stream_overhead(
    port: int, auth: dict[str, str], label: str, pairs: int = 60, inputs: dict[str, Any] | None = None
) -> None:
    key = auth["Authorization"].split()[1]
    for streaming in (False, True, False, True):  # warm both paths
        await raw_run(port, key, streaming, inputs)
    blocking, streaming_, run_b, run_s, paired = [], [], [], [], []
    for i in range(pairs):  # alternated, and which goes first flips, so load on the shared machine hits both alike
        order = (False, True) if i % 2 else (True, False)
        got = {mode: await raw_run(port, key, mode, inputs) for mode in order}
        blocking.append(got[False][0])
        streaming_.append(got[True][0])
        run_b.append(got[False][1])
        run_s.append(got[True][1])
        paired.append((got[True][1] - got[False][1]) / got[False][1])
    b, s = statistics.median(blocking), statistics.median(streaming_)
    rb, rs = statistics.median(run_b), statistics.median(run_s)
    print(
        f"API, {label}, {pairs} alternated pairs:\n"
        f"  the run's own elapsed_time, medians: blocking {rb * 1e3:.1f} ms, streaming {rs * 1e3:.1f} ms "
        f"({(rs - rb) / rb * 100:+.1f}%); median of the pairs' differences: the event stream adds "
        f"{statistics.median(paired) * 100:+.1f}% (target < {TARGET_STREAM_PCT:.0f}%)\n"
        f"  request to last byte, medians: blocking {b * 1e3:.1f} ms, streaming {s * 1e3:.1f} ms "
        f"({(s - b) / b * 100:+.1f}%)"
    )


def code_chain(n: int) -> dict[str, Any]:
    source = "def main(x: int) -> dict:\n    return {'y': sum(i * i for i in range(20000)) + x}\n"
    nodes: list[dict[str, Any]] = [{"id": "c0", "data": {"type": "start", "title": "S", "variables": []}}]
    edges = []
    for i in range(1, n + 1):
        prev = ["c0", "sys.timestamp"] if i == 1 else [f"c{i - 1}", "y"]
        nodes.append(
            {
                "id": f"c{i}",
                "data": {
                    "type": "code",
                    "title": f"C{i}",
                    "code_language": "python3",
                    "code": source,
                    "variables": [{"variable": "x", "value_selector": prev}],
                    "outputs": {"y": {"type": "number", "children": None}},
                },
            }
        )
        edges.append({"source": f"c{i - 1}", "target": f"c{i}"})
    nodes.append(
        {
            "id": "e",
            "data": {"type": "end", "title": "E", "outputs": [{"variable": "o", "value_selector": [f"c{n}", "y"]}]},
        }
    )
    edges.append({"source": f"c{n}", "target": "e"})
    return {"workflow": {"graph": {"nodes": nodes, "edges": edges}}}


async def main() -> None:
    print(f"bench/workflow.py on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    await bench_engine()
    await bench_code_node()
    await bench_api()


if __name__ == "__main__":
    asyncio.run(main())
