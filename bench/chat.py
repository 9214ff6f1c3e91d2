"""Chat overhead: blocking and streaming chat through Openify (a live `openify serve`, SQLite) beside the same
calls made straight to the stand-in model server (zero token latency), at concurrency 1 and 32, in one run.

    python bench/chat.py [--n 400] [--concurrency 1 32] [--words 20]

Prints requests/s, p50/p99 latency and time to first byte per path. Each Openify request starts a new
conversation, so with Dify's default `auto_generate_name: true` the server also asks the model for a title
after the answer (a second model call per request, on the server's CPU and the stand-in's); the rows
"naming on" are that default, the rows "naming off" send `auto_generate_name: false`. Time to first byte
(TTFB) is the time to the first `data:` frame (the first token's event; pings carry no data).
Targets (issue 5): Openify adds < 5 ms at p50 to a blocking call and < 3 ms to time to first byte, and serves
>= 300 blocking chat requests/s.
The stand-in, the server and this client are separate processes, so the numbers include real HTTP and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_DSL = {
    "version": "0.3.1",
    "kind": "app",
    "app": {"mode": "chat", "name": "bench"},
    "model_config": {
        "model": {"provider": "openai", "name": "gpt-4o-mini", "mode": "chat", "completion_params": {}},
        "pre_prompt": "You are a helpful assistant.",
        "prompt_type": "simple",
        "user_input_form": [],
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


class Stack:
    """The stand-in model server and `openify serve`, each in its own process."""

    def __init__(self, words: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="openify-bench-"))
        self.fake_port, self.port = free_port(), free_port()
        self.fake_url = f"http://127.0.0.1:{self.fake_port}/v1"
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.words = words

    def start(self) -> str:
        fake = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "tests.fake_llm", "--port", str(self.fake_port), "--token-latency-ms", "0"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        self.procs.append(fake)
        wait_ready(f"{self.fake_url}/models", fake, "stand-in")
        data = self.tmp / "data"
        data.mkdir()
        providers = {
            "default": "fake",
            "providers": {
                "fake": {
                    "type": "openai_compatible",
                    "base_url": self.fake_url,
                    "api_key": "sk-bench",
                    "max_retries": 0,
                }
            },
        }
        (data / "providers.yaml").write_text(yaml.safe_dump(providers))
        dsl = self.tmp / "app.yml"
        dsl.write_text(yaml.safe_dump(APP_DSL))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENIFY_", "OPENAI_"))}  # noqa: TID251
        env["OPENIFY_LOG_LEVEL"] = "WARNING"
        cli = [sys.executable, "-m", "openify.cli"]
        out = subprocess.run(  # noqa: S603 - our own CLI
            [*cli, "app", "import", str(dsl), "--data-dir", str(data)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(out.stdout)["api_key"]
        server = subprocess.Popen(  # noqa: S603 - our own CLI
            [*cli, "serve", "--port", str(self.port), "--data-dir", str(data)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        self.procs.append(server)
        wait_ready(f"http://127.0.0.1:{self.port}/health", server, "openify serve")
        return str(key)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


Call = Callable[[httpx.AsyncClient, int], Awaitable[tuple[float, float]]]


def calls(stack: Stack, key: str) -> dict[str, Call]:
    words = " ".join(f"w{i}" for i in range(stack.words))
    reply_prompt = f"say {words}"
    llm_body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": reply_prompt},
        ],
    }
    auth = {"Authorization": f"Bearer {key}"}

    def chat_body(i: int, mode: str, naming: bool) -> dict[str, object]:
        body: dict[str, object] = {
            "inputs": {},
            "query": reply_prompt,
            "user": f"bench-{i % 50}",
            "response_mode": mode,
            "conversation_id": "",
        }
        if not naming:  # left out, it is Dify's default: true
            body["auto_generate_name"] = False
        return body

    async def direct_blocking(c: httpx.AsyncClient, _i: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        r = await c.post(f"{stack.fake_url}/chat/completions", json=llm_body)
        r.raise_for_status()
        dt = time.perf_counter() - t0
        return dt, dt

    async def direct_streaming(c: httpx.AsyncClient, _i: int) -> tuple[float, float]:
        return await _stream(
            c,
            f"{stack.fake_url}/chat/completions",
            {**llm_body, "stream": True, "stream_options": {"include_usage": True}},
            {},
        )

    def openify_blocking(naming: bool) -> Call:
        async def call(c: httpx.AsyncClient, i: int) -> tuple[float, float]:
            t0 = time.perf_counter()
            r = await c.post(f"{stack.base}/chat-messages", json=chat_body(i, "blocking", naming), headers=auth)
            if r.status_code != 200:
                raise RuntimeError(r.text)
            dt = time.perf_counter() - t0
            return dt, dt

        return call

    def openify_streaming(naming: bool) -> Call:
        async def call(c: httpx.AsyncClient, i: int) -> tuple[float, float]:
            return await _stream(c, f"{stack.base}/chat-messages", chat_body(i, "streaming", naming), auth)

        return call

    # The OpenAI face on the same app: the same turn through /openai/v1/chat/completions.
    face = stack.base.removesuffix("/v1") + "/openai/v1"
    model = httpx.get(f"{face}/models", headers=auth).json()["data"][0]["app_id"]

    def face_body(i: int, stream: bool) -> dict[str, object]:
        body: dict[str, object] = {
            "model": model, "messages": [{"role": "user", "content": reply_prompt}], "user": f"bench-{i % 50}",
        }  # fmt: skip
        return {**body, "stream": True, "stream_options": {"include_usage": True}} if stream else body

    async def face_blocking(c: httpx.AsyncClient, i: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        r = await c.post(f"{face}/chat/completions", json=face_body(i, False), headers=auth)
        if r.status_code != 200:
            raise RuntimeError(r.text)
        dt = time.perf_counter() - t0
        return dt, dt

    async def face_streaming(c: httpx.AsyncClient, i: int) -> tuple[float, float]:
        return await _stream(c, f"{face}/chat/completions", face_body(i, True), auth)

    return {
        "direct blocking": direct_blocking,
        "openify blocking": openify_blocking(naming=True),
        "openify blocking/off": openify_blocking(naming=False),
        "direct streaming": direct_streaming,
        "openify streaming": openify_streaming(naming=True),
        "openify streaming/off": openify_streaming(naming=False),
        "openai-face blocking": face_blocking,
        "openai-face streaming": face_streaming,
    }


async def _stream(
    c: httpx.AsyncClient, url: str, body: dict[str, object], headers: dict[str, str]
) -> tuple[float, float]:
    """(total seconds, seconds to the first data frame)."""
    t0 = time.perf_counter()
    first = 0.0
    async with c.stream("POST", url, json=body, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(await r.aread())
        async for chunk in r.aiter_raw():
            if not first and b"data: " in chunk:
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc): robust on a machine others also load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(call: Call, n: int, concurrency: int, pids: dict[str, int]) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        for i in range(min(20, n)):  # warm up connections and caches
            await call(c, i)
        latencies: list[float] = []
        ttfb: list[float] = []
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                total, first = await call(c, i)
                latencies.append(total)
                ttfb.append(first)

        t0 = time.perf_counter()
        cpu0 = {k: cpu_s(p) for k, p in pids.items()}
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        cpu = {k: (cpu_s(p) - cpu0[k]) / n * 1000 for k, p in pids.items()}
    latencies.sort()
    return {
        "rps": n / wall,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "ttfb": statistics.median(ttfb) * 1000,
        "cpu_openify": cpu["openify"],
        "cpu_fake": cpu["fake"],
    }


async def run(args: argparse.Namespace, stack: Stack, key: str) -> None:
    table = calls(stack, key)
    print(
        f"{'path':22s} {'conc':>4s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'TTFB ms':>8s} "
        f"{'CPU ms/req: openify':>20s} {'stand-in':>9s}"
    )
    pids = {"fake": stack.procs[0].pid, "openify": stack.procs[1].pid}
    results: dict[tuple[str, int], dict[str, float]] = {}
    for concurrency in args.concurrency:
        for name, call in table.items():
            r = results[(name, concurrency)] = await measure(call, args.n, concurrency, pids)
            print(
                f"{name:22s} {concurrency:4d} {r['rps']:8.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['ttfb']:8.2f} "
                f"{r['cpu_openify']:20.2f} {r['cpu_fake']:9.2f}"
            )
    print()
    print("(/off: auto_generate_name false; the other Openify rows use Dify's default, naming on)")
    for concurrency in args.concurrency:
        for mode in ("blocking", "streaming"):
            d = results[(f"direct {mode}", concurrency)]
            for suffix, naming in (("", "naming on "), ("/off", "naming off")):
                o = results[(f"openify {mode}{suffix}", concurrency)]
                print(
                    f"conc {concurrency:2d} {mode:9s} {naming}: Openify adds {o['p50'] - d['p50']:6.2f} ms at p50, "
                    f"{o['ttfb'] - d['ttfb']:6.2f} ms to TTFB; {o['rps']:.0f} req/s vs {d['rps']:.0f} direct; "
                    f"server CPU {o['cpu_openify']:.2f} ms/request (ceiling {1000 / o['cpu_openify']:.0f} req/s "
                    f"per core)"
                )
    for concurrency in args.concurrency:
        for mode in ("blocking", "streaming"):
            o, f = results[(f"openify {mode}", concurrency)], results[(f"openai-face {mode}", concurrency)]
            print(
                f"conc {concurrency:2d} {mode:9s}: the OpenAI face adds {f['p50'] - o['p50']:6.2f} ms at p50 over "
                f"/chat-messages on the same app; server CPU {f['cpu_openify']:.2f} vs {o['cpu_openify']:.2f} "
                "ms/request"
            )
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=400, help="requests per path and concurrency")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    p.add_argument("--words", type=int, default=20, help="words in the prompt (the stand-in echoes them)")
    args = p.parse_args()
    stack = Stack(args.words)
    try:
        key = stack.start()
        asyncio.run(run(args, stack, key))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
