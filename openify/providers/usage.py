"""Usage as Dify reports it: the provider's own token counts when it sends them, else counted here."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from openify.providers.base import ChatMessage, LLMRequest, ToolCall, Usage
from openify.providers.config import ModelTarget
from openify.tokens import count_tokens, estimate_tokens

# Model families whose tokenizer is (close to) cl100k; other vocabularies get the CJK-aware estimate.
_OPENAI_STYLE = re.compile(r"^(gpt-|o\d|chatgpt|text-|davinci|babbage|ft:gpt)", re.IGNORECASE)


def uses_tiktoken(target: ModelTarget) -> bool:
    if target.settings.tokenizer is not None:
        return target.settings.tokenizer == "tiktoken"
    return target.config.type == "azure_openai" or bool(_OPENAI_STYLE.match(target.model))


def prompt_text(messages: Sequence[ChatMessage]) -> str:
    """The text of a prompt for counting: message contents and the tool calls they carry."""
    parts: list[str] = []
    for message in messages:
        if isinstance(message.content, str):
            parts.append(message.content)
        else:
            parts.extend(p for p in message.content if isinstance(p, str))
        parts.extend(f"{c.name} {c.arguments}" for c in message.tool_calls)
    return "\n".join(parts)


def measure(
    target: ModelTarget,
    request: LLMRequest,
    *,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    completion_text: str,
    tool_calls: Sequence[ToolCall],
    started: float,
    first_token: float | None,
    ended: float,
) -> Usage:
    """Build the Usage of one call; token counts the provider did not send are counted after the stream."""
    count = count_tokens if uses_tiktoken(target) else estimate_tokens
    if prompt_tokens is None:
        prompt_tokens = count(prompt_text(request.messages))
        if request.tools:
            prompt_tokens += count(json.dumps([t.parameters for t in request.tools], ensure_ascii=False))
    if completion_tokens is None:
        completion_tokens = count(completion_text) + sum(count(f"{c.name} {c.arguments}") for c in tool_calls)
    model = target.settings
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        prompt_unit_price=model.input_price,
        completion_unit_price=model.output_price,
        price_unit=model.price_unit,
        currency=model.currency,
        latency=ended - started,
        time_to_first_token=None if first_token is None else first_token - started,
        time_to_generate=None if first_token is None else ended - first_token,
    )
