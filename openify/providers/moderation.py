"""Moderation models of OpenAI-compatible APIs (`POST /moderations`), behind Dify's `openai_moderation` type of
content moderation (`sensitive_word_avoidance`)."""

from __future__ import annotations

from openify.providers.clients import ClientPool
from openify.providers.config import ModelTarget
from openify.providers.openai_compatible import OPENAI_BASE_URL, bearer_headers

# The model Dify's OpenAIModeration asks provider `openai` for (core/moderation/openai_moderation).
OPENAI_MODERATION_MODEL = "omni-moderation-latest"


class OpenAIModeration:
    def __init__(self, target: ModelTarget, clients: ClientPool) -> None:
        self.target, self._clients = target, clients
        self.name = target.model

    def __repr__(self) -> str:
        return f"OpenAIModeration(provider={self.target.provider!r}, model={self.name!r})"

    def flagged(self, text: str) -> bool:
        url = (self.target.config.base_url or OPENAI_BASE_URL).rstrip("/") + "/moderations"
        body = {"model": self.name, "input": text}
        results = self._clients.post_json(self.target, url, bearer_headers(self.target), body).get("results") or []
        return any(bool(r.get("flagged")) for r in results if isinstance(r, dict))
