"""What a generation yields, one union per stream: `ChatEvent`. `api/schemas/chat.py` puts them on the wire."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openify.errors import OpenifyError
from openify.providers.base import Usage


@dataclass(frozen=True, slots=True)
class MessageDelta:
    answer: str


@dataclass(frozen=True, slots=True)
class AgentMessageDelta:
    answer: str


@dataclass(frozen=True, slots=True)
class AgentThought:
    """One agent step; the same id is sent again as the step fills in."""

    id: str
    position: int
    thought: str
    observation: str
    tool: str
    tool_labels: Mapping[str, Any]
    tool_input: str
    message_files: Sequence[str]


@dataclass(frozen=True, slots=True)
class MessageFile:
    id: str
    type: str
    belongs_to: str
    url: str


@dataclass(frozen=True, slots=True)
class MessageReplace:
    answer: str


@dataclass(frozen=True, slots=True)
class MessageEnd:
    usage: Usage
    retriever_resources: Sequence[Mapping[str, Any]]
    files: Sequence[Mapping[str, Any]] | None
    annotation_reply: Mapping[str, Any] | None = None  # set when an annotation answered instead of the model


@dataclass(frozen=True, slots=True)
class GenerationError:
    error: OpenifyError


ChatEvent = (
    MessageDelta | AgentMessageDelta | AgentThought | MessageFile | MessageReplace | MessageEnd | GenerationError
)
