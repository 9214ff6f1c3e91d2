"""Built-in extractors, splitters, keyword indexes and vector stores (a plugin module: `register(r)`)."""

from __future__ import annotations

import importlib

from openify.registry import Registries

_MODULES = (
    "openify.knowledge.extractors.text",
    "openify.knowledge.extractors.markdown",
    "openify.knowledge.extractors.html",
    "openify.knowledge.extractors.pdf",
    "openify.knowledge.extractors.docx",
    "openify.knowledge.extractors.csv",
    "openify.knowledge.extractors.xlsx",
    "openify.knowledge.extractors.json",
    "openify.knowledge.splitters",
    "openify.knowledge.keyword.bm25",
    "openify.knowledge.vector_stores.hnsw",
    "openify.knowledge.vector_stores.numpy_store",
)


def register(r: Registries) -> None:
    """Register the built-in knowledge components."""
    for name in _MODULES:
        importlib.import_module(name).register(r)
