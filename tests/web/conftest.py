"""The web tests use the chat API tests' stand-in settings and app fixtures."""

from tests.api.chatkit import chat, settings

__all__ = ["chat", "settings"]
