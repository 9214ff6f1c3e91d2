"""Built-in extractors, splitters, keyword indexes and vector stores (a plugin module: `register(r)`)."""

from __future__ import annotations

from openify.registry import Registries


def register(r: Registries) -> None:
    """Register the built-in knowledge components."""
