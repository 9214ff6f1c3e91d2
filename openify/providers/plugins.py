"""Built-in model providers (a plugin module: `register(r)`)."""

from __future__ import annotations

from openify.registry import Registries


def register(r: Registries) -> None:
    """Register the built-in LLM, embedding and rerank providers."""
