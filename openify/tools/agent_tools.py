"""The contract of the built-in agent tools that `r.tools` holds (current_time, http_request)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openify.settings import Settings


class AgentTool(Protocol):
    """One function an agent-chat app may call."""

    name: str
    label: str
    description: str
    parameters: Mapping[str, Any]  # JSON Schema of the arguments

    async def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Run the tool; the result is shown to the model as text."""
        ...


class AgentToolFactory(Protocol):
    """What `r.tools` holds: builds a tool with the server's settings."""

    def __call__(self, settings: Settings) -> AgentTool:
        """The tool, configured by `settings`."""
        ...
