"""`python -m tests.fake_llm --port N --token-latency-ms X`: run the stand-in model server until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

from tests.fake_llm.server import FakeLLM


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_llm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token-latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    fake = FakeLLM(host=args.host, port=args.port).start()
    fake.token_latency_s = args.token_latency_ms / 1000
    sys.stdout.write(f"fake LLM at {fake.base_url} (token latency {args.token_latency_ms} ms)\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
