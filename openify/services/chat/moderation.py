"""Content moderation (`sensitive_word_avoidance`) of chat, completion, agent-chat and chatflow turns.

`keywords` is a substring match; `openai_moderation` asks the configured moderation model (providers.yaml, see
ProviderManager.moderation). Dify's `api` type (an HTTP API extension) is refused at import (services/dsl.py).
"""

from __future__ import annotations

import asyncio
import logging

from openify.providers.base import ModelResolver
from openify.services.chat.config import Moderation

log = logging.getLogger(__name__)


async def flagged(mod: Moderation, models: ModelResolver, *texts: str) -> bool:
    """Whether `texts` break the app's moderation; a failing moderation model fails the turn, as in Dify."""
    if mod.kind != "openai_moderation":
        return mod.flags(*texts)
    text = "\n".join(t for t in texts if t)
    if not text:
        return False
    return await asyncio.to_thread(lambda: models.moderation().flagged(text))


async def output_flagged(mod: Moderation, models: ModelResolver, answer: str) -> bool:
    """Whether the finished answer is to be replaced by the output preset. Dify's output moderation logs a
    failing check and keeps the answer (core/moderation/output_moderation.py); so does this."""
    if mod.output_preset is None:
        return False
    try:
        return await flagged(mod, models, answer)
    except Exception:
        log.exception("output moderation failed; the answer is kept")
        return False
