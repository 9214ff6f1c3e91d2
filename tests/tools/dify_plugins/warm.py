"""Pre-install the Dify plugins the tests run, so that their dependencies sit in uv's cache and the test session's
own installs take seconds (`.ci/run` calls this; `python -m tests.tools.dify_plugins.warm`)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from openify.settings import Settings
from openify.tools.dify_plugins.installer import find_python, install
from tests.tools.dify_plugins.conftest import OFFICIAL, OWN


def main() -> int:
    env = Settings(_env_file=None).dify_plugins.passed_env()  # type: ignore[call-arg]
    python = find_python(None)
    with tempfile.TemporaryDirectory() as root:
        for folder in [*OFFICIAL.values(), OWN / "everything"]:
            started = time.monotonic()
            plugin = install(folder, Path(root), python, lambda _stage: None, env=env)
            sys.stderr.write(f"{plugin.identifier}: {time.monotonic() - started:.1f} s on {python}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
