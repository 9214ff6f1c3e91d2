"""Built-in plugins, loaded exactly as third-party ones named in OPENIFY_PLUGINS are.

A plugin is a module with `register(r: Registries) -> None`. Importing a module registers nothing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

from openify.registry import Registries

log = logging.getLogger(__name__)

# Modules are added here as the features that own them land. A module missing from the
# installed tree is an error: built-ins ship with the package.
BUILTINS: list[str] = [
    "openify.providers.plugins",
    "openify.engine.plugins",
    "openify.knowledge.plugins",
    "openify.jobs.plugins",
    "openify.tools.plugins",
    "openify.tools.dify_plugins",
]


def load_plugins(r: Registries, extra: Iterable[str] = ()) -> Registries:
    """Call `register(r)` of every built-in module, then of every extra module named by the user."""
    for name in [*BUILTINS, *extra]:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if register is None:
            raise ImportError(f"plugin module {name!r} has no register(r) function")
        register(r)
        log.debug("plugin loaded: %s", name)
    return r


def build_registries(extra: Iterable[str] = ()) -> Registries:
    return load_plugins(Registries(), extra)
