"""Imports point down (STYLE §1): import-linter's contracts in pyproject.toml hold, with no ignores."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    assert exe is not None, "import-linter is a test dependency: pip install -e '.[test]'"
    r = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
