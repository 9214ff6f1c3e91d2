"""`python -m openify.tools.dify_plugins.python_check`: print the Python >= 3.12 Dify plugins would run on, or fail."""

from __future__ import annotations

import sys

from openify.settings import Settings
from openify.tools.dify_plugins.installer import DifyPluginInstallError, find_python

if __name__ == "__main__":
    try:
        sys.stdout.write(f"{find_python(Settings().dify_plugins.python)}\n")
    except DifyPluginInstallError as e:
        sys.stderr.write(f"{e.detail}\n")
        sys.exit(1)
