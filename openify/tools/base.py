"""The contract of an agent tool: a JSON-schema described function the model may call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from openify.settings import Settings


class Tool(Protocol):
    """One callable tool. Instances are built per server from its Settings."""

    name: str
    label: str
    description: str
    parameters: Mapping[str, Any]  # JSON Schema of the arguments

    async def invoke(self, arguments: Mapping[str, Any]) -> str:
        """Run the tool and return its observation as text; a failure is an `error: ...` text, not a raise."""
        ...


class ToolFactory(Protocol):
    def __call__(self, settings: Settings) -> Tool:
        """Build the tool for one server."""
        ...
