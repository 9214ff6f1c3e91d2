"""Built-in workflow node types (a plugin module: `register(r)`)."""

from __future__ import annotations

import importlib

from openify.registry import Registries

# One module per DSL node type; each has `register(r)` like any third-party plugin.
NODE_MODULES = [
    "start",
    "end",
    "answer",
    "markers",
    "llm",
    "knowledge_retrieval",
    "question_classifier",
    "if_else",
    "code",
    "template_transform",
    "http_request",
    "variable_aggregator",
    "assigner",
    "parameter_extractor",
    "iteration",
    "loop",
    "list_operator",
    "document_extractor",
    "tool",
    "agent",
]


def register(r: Registries) -> None:
    """Register the built-in node types under their DSL names."""
    for name in NODE_MODULES:
        importlib.import_module(f"openify.engine.nodes.{name}").register(r)
