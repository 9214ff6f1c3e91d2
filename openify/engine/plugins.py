"""Built-in workflow node types (a plugin module: `register(r)`)."""

from __future__ import annotations

from openify.registry import Registries


def register(r: Registries) -> None:
    """Register the built-in node types under their DSL names."""
