"""`openify app import` of apps with tools: never refused; missing Dify plugins printed with the command that
installs each; `--install-missing` tries them and reports why one could not be installed, without hanging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import DSL_DIR


def run(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIFY_")}  # noqa: TID251
    env["OPENIFY_DATABASE_URL"] = database_url
    env["OPENIFY_DIFY_PLUGINS__MARKETPLACE_URL"] = "http://127.0.0.1:9"  # nothing listens: unreachable at once
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "openify.cli", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_prints_missing_plugins_with_install_commands(tmp_path: Path, database_url: str) -> None:
    r = run(tmp_path, database_url, "app", "import", str(next(DSL_DIR.glob("11-*.yml"))))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["app_id"] and out["api_key"]
    commands = {m["plugin"]: m["install"] for m in out["missing_plugins"]}
    assert commands["kalochin/pdf_process"] == (
        "openify plugin install kalochin/pdf_process:0.0.4@"
        "29c7b0927a11333044049de20657119779a06e0eb003b6c5cffaec07e5204332"
    )
    assert (
        "missing tool kalochin/pdf_process/pdf_process/pdf_to_png: openify plugin install kalochin/pdf_process:0.0.4@"
        in r.stderr
    )


def test_install_missing_fails_fast_when_the_marketplace_is_unreachable(tmp_path: Path, database_url: str) -> None:
    started = time.monotonic()
    r = run(tmp_path, database_url, "app", "import", str(next(DSL_DIR.glob("16-*.yml"))), "--install-missing")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started < 60
    out = json.loads(r.stdout)
    tried = {i["source"]: i["error"] for i in out["installed"]}
    agent = "langgenius/agent:0.0.9@f16916b704a20067317dbe9030f62aa28f0832021a3ef6d4ce699504074c5e13"
    assert tried.get(agent)  # an error naming why, not a hang
    assert {m["plugin"] for m in out["missing_plugins"]} == {"langgenius/agent", "langgenius/google"}
