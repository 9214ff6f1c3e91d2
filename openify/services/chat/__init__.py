"""Chat, completion and agent apps: the generation pipeline, conversations, messages, files, feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openify.services.chat.conversations import ConversationService
from openify.services.chat.files import FileService
from openify.services.chat.messages import MessageService
from openify.services.chat.service import ChatService, TurnRequest

if TYPE_CHECKING:
    from openify.services.container import Services

__all__ = ["ChatService", "ConversationService", "FileService", "MessageService", "TurnRequest", "build_chat"]


def build_chat(services: Services) -> ChatService:
    chat = ChatService(
        services.db,
        services.models,
        services.registries,
        services.end_users,
        ConversationService(services.db),
        MessageService(services.db),
        FileService(services.db, services.blobs, services.settings.upload, services.file_links),
        services.settings,
    )
    chat.knowledge = getattr(services, "knowledge", None)
    chat.annotations = getattr(services, "annotations", None)
    chat.tools = getattr(services, "tools", None)
    return chat
