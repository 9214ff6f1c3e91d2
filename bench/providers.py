"""Provider layer overhead: stream completions from the stand-in server directly and through ProviderManager,
in one run, interleaved, and print tokens/s and time to first token of each.

The baseline is plain aiohttp (the client the layer itself uses) reading the stream the way the layer does:
`response.content.iter_any()` chunks, split into SSE frames on blank lines, each `data:` frame parsed with
json.loads, no Openify code. Two line readers are printed beside it for reference (aiohttp's line iterator
and httpx's aiter_lines): they are slower per token, so a ratio against them would flatter the layer.

    python bench/providers.py [--n 200] [--words 200] [--token-latency-ms 0]

Target (issue 4): the layer keeps >= 97% of the direct tokens/s and adds < 1 ms to time to first token.
The stand-in runs in a subprocess so that its work does not share this process's GIL with the client.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openify.providers import plugins  # noqa: E402
from openify.providers.base import ChatMessage, LLMRequest, TextDelta  # noqa: E402
from openify.providers.config import build_providers  # noqa: E402
from openify.providers.manager import ProviderManager  # noqa: E402
from openify.registry import Registries  # noqa: E402
from openify.settings import Settings  # noqa: E402

MODEL = "gpt-4o-mini"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.fake_llm", "--port", str(port), "--token-latency-ms", str(latency_ms)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE)  # noqa: S603  our own module
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("stand-in server did not start")


async def direct(client: httpx.AsyncClient, url: str, body: dict[str, object]) -> tuple[int, float, float]:
    """(tokens, seconds to first token, total seconds) of one stream read with plain httpx, line by line
    (for reference: not how the layer reads)."""
    tokens, first = 0, 0.0
    started = time.perf_counter()
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            payload = json.loads(line[6:])
            choices = payload.get("choices")
            if choices and choices[0].get("delta", {}).get("content"):
                if not tokens:
                    first = time.perf_counter() - started
                tokens += 1
    return tokens, first, time.perf_counter() - started


async def direct_aiohttp_chunks(
    session: aiohttp.ClientSession, url: str, body: dict[str, object]
) -> tuple[int, float, float]:
    """The baseline: plain aiohttp reading the stream as the layer does (chunks as they arrive, split into
    SSE frames on blank lines, an incremental UTF-8 decoder, json.loads per `data:` frame)."""
    tokens, first = 0, 0.0
    started = time.perf_counter()
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = ""
    async with session.post(url, json=body, headers={"Accept-Encoding": "identity"}) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            *frames, buffer = (buffer + decoder.decode(chunk)).split("\n\n")
            for frame in frames:
                if not frame.startswith("data: ") or frame == "data: [DONE]":
                    continue
                payload = json.loads(frame[6:])
                choices = payload.get("choices")
                if choices and choices[0].get("delta", {}).get("content"):
                    if not tokens:
                        first = time.perf_counter() - started
                    tokens += 1
    return tokens, first, time.perf_counter() - started


async def direct_aiohttp(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> tuple[int, float, float]:
    """The same with plain aiohttp, reading lines (for reference: not how the layer reads)."""
    tokens, first = 0, 0.0
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            payload = json.loads(line[6:])
            choices = payload.get("choices")
            if choices and choices[0].get("delta", {}).get("content"):
                if not tokens:
                    first = time.perf_counter() - started
                tokens += 1
    return tokens, first, time.perf_counter() - started


async def layered(manager: ProviderManager, request: LLMRequest) -> tuple[int, float, float]:
    """The same through the provider layer (typed events, usage accounting, error mapping)."""
    tokens, first = 0, 0.0
    started = time.perf_counter()
    async for event in manager.llm("openai", MODEL).stream(request):
        if isinstance(event, TextDelta):
            if not tokens:
                first = time.perf_counter() - started
            tokens += 1
    return tokens, first, time.perf_counter() - started


async def run(args: argparse.Namespace, base_url: str) -> None:
    prompt = " ".join(f"word{i}" for i in range(args.words))
    request = LLMRequest(model=MODEL, messages=[ChatMessage("user", prompt)])
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    registries = Registries()
    plugins.register(registries)
    settings = Settings(_env_file=None, data_dir=Path("/nonexistent-openify-bench"))
    manager = ProviderManager(
        settings, registries, build_providers({"openai": {"base_url": base_url, "api_key": "sk-bench"}})
    )
    client = httpx.AsyncClient(timeout=30)
    # The same session settings as the layer's pool (openify/providers/clients.py).
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=200, ttl_dns_cache=300)
    session = aiohttp.ClientSession(connector=connector, trust_env=False)
    url = base_url + "/chat/completions"
    paths = {
        "aiohttp-chunks": lambda: direct_aiohttp_chunks(session, url, body),
        "aiohttp-lines": lambda: direct_aiohttp(session, url, body),
        "httpx-lines": lambda: direct(client, url, body),
        "layer": lambda: layered(manager, request),
    }
    results: dict[str, list[tuple[int, float, float]]] = {name: [] for name in paths}
    for _ in range(10):  # warm up connections, caches, tiktoken
        for call in paths.values():
            await call()
    cpu_s = dict.fromkeys(paths, 0.0)  # this process's CPU: insensitive to other processes' load

    async def measured(name: str) -> None:
        started = time.process_time()
        results[name].append(await paths[name]())
        cpu_s[name] += time.process_time() - started

    order = list(paths)
    for i in range(args.n):  # interleaved, order reversed every other round, so drift hits every path alike
        for name in order if i % 2 == 0 else order[::-1]:
            await measured(name)
    await client.aclose()
    await session.close()
    await manager.aclose()

    summary = {}
    for name, runs in results.items():
        tokens = sum(r[0] for r in runs)
        seconds = sum(r[2] for r in runs)
        ttft = [r[1] * 1000 for r in runs]
        summary[name] = (tokens / seconds, statistics.median(ttft), statistics.mean(ttft), len(runs), tokens)
        print(
            f"{name:14s} {len(runs):4d} streams {tokens:7d} tokens  {tokens / seconds:10.0f} tokens/s  "
            f"TTFT median {statistics.median(ttft):.3f} ms  mean {statistics.mean(ttft):.3f} ms"
        )
    best = "aiohttp-chunks"  # the same client and the same reading strategy as the layer
    fastest = max(("aiohttp-chunks", "aiohttp-lines", "httpx-lines"), key=lambda name: summary[name][0])
    ratio = summary["layer"][0] / summary[best][0]
    added = summary["layer"][1] - summary[best][1]
    # Streams i of all paths ran back to back: their ratio is robust to load from other processes.
    paired = statistics.median(d[2] / lay[2] for d, lay in zip(results[best], results["layer"], strict=True))
    paired_ttft = statistics.median(
        (lay[1] - d[1]) * 1000 for d, lay in zip(results[best], results["layer"], strict=True)
    )
    print(f"baseline: {best} (plain aiohttp reading chunks as the layer does); fastest direct reader: {fastest}")
    print(f"layer/{best} tokens/s: {ratio:.1%} (target >= 97%)   added TTFT (median): {added:+.3f} ms (target < 1 ms)")
    print(f"paired medians: tokens/s ratio {paired:.1%}, added TTFT {paired_ttft:+.3f} ms")
    cpu = {name: cpu_s[name] / summary[name][4] * 1e6 for name in cpu_s}
    print("client CPU per token: " + ", ".join(f"{name} {cpu[name]:.2f} us" for name in cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="streams per path")
    parser.add_argument("--words", type=int, default=200, help="prompt words; the stand-in echoes them as tokens")
    parser.add_argument("--token-latency-ms", type=float, default=0.0, help="stand-in's delay between tokens")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port, args.token_latency_ms)
    try:
        print(
            f"stand-in at 127.0.0.1:{port}, token latency {args.token_latency_ms} ms, "
            f"{args.n} streams x ~{args.words + 1} tokens per path"
        )
        asyncio.run(run(args, f"http://127.0.0.1:{port}/v1"))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
