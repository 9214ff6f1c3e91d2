"""How an easy-UI app builds its prompt (Dify's simple and advanced prompt transforms), history within the
model's context window, oldest turns dropped first, counted in tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from openify.errors import CompletionRequestError
from openify.providers.base import DEFAULT_CONTEXT_SIZE, ChatMessage, ContentPart, ImagePart
from openify.services.chat.config import AppConfig
from openify.services.chat.messages import Turn
from openify.tokens import count_tokens, count_tokens_upto

# Dify's PromptTemplateParser: variables are 1-30 word characters; the three specials are filled here.
_VARIABLE = re.compile(r"\{\{([a-zA-Z_][a-zA-Z0-9_]{0,29}|#histories#|#query#|#context#)\}\}")
_CONTEXT_PROMPT = (
    "Use the following context as your learned knowledge, inside <context></context> XML tags.\n\n"
    "<context>\n{context}\n</context>\n\n"
    "When answer to user:\n"
    "- If you don't know, just say that you don't know.\n"
    "- If you don't know when you are not sure, ask for clarification.\n"
    "Avoid mentioning that you obtained the information from the context.\n"
    "And answer according to the language of the user's question.\n\n"
)
_COMPLETION_HISTORIES = (
    "Here are the chat histories between human and assistant, inside <histories></histories> XML tags.\n\n"
    "<histories>\n{histories}\n</histories>\n\n"
)
_DEFAULT_MAX_TOKENS = 512
# Dify's AppRunner.get_pre_calculate_rest_tokens, raised as InvokeBadRequestError and answered 400.
TOO_LONG = (
    "Query or prefix prompt is too long, you can reduce the prefix prompt, "
    "or shrink the max token, or switch to a llm with a larger token limit size."
)


def check_prompt_fits(cfg: AppConfig, inputs: Mapping[str, Any], query: str, context_size: int) -> None:
    """Raise CompletionRequestError (400) when the prompt without history or context, plus the answer's
    max_tokens, is over the model's context, as Dify does before calling the model. Blocking (tiktoken): run it
    in a thread. A prompt of fewer UTF-8 bytes than the room left cannot have more tokens, and is not counted."""
    max_tokens = int(cfg.model.params.get("max_tokens") or cfg.model.params.get("max_tokens_to_sample") or 0)
    room = context_size - max_tokens
    texts = [
        m.content if isinstance(m.content, str) else "".join(p for p in m.content if isinstance(p, str))
        for m in build_messages(cfg, inputs, query, context_size=context_size)
    ]
    if sum(len(t.encode()) for t in texts) <= room:
        return
    if count_tokens_upto(texts, room) > room:
        raise CompletionRequestError(TOO_LONG)


def render(template: str, values: Mapping[str, Any]) -> str:
    """`{{name}}` filled from values; unknown names stay as written, and `{{` inside values is removed so an
    input cannot inject another variable (Dify's remove_template_variables)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            return m.group(0)
        value = values[key]
        text = "" if value is None else value if isinstance(value, str) else str(value)
        return text if key.startswith("#") else text.replace("{{", "{").replace("}}", "}")

    return _VARIABLE.sub(sub, template)


def _user(text: str, images: Sequence[ImagePart]) -> ChatMessage:
    if not images:
        return ChatMessage("user", text)
    parts: list[ContentPart] = [text, *images] if text else list(images)
    return ChatMessage("user", parts)


def _budget(cfg: AppConfig, context_size: int | None, fixed: Sequence[ChatMessage]) -> int:
    max_tokens = cfg.model.params.get("max_tokens") or cfg.model.params.get("max_tokens_to_sample") or 0
    size = context_size or DEFAULT_CONTEXT_SIZE
    used = sum(
        count_tokens(m.content)
        if isinstance(m.content, str)
        else sum(count_tokens(p) for p in m.content if isinstance(p, str))
        for m in fixed
    )
    return size - int(max_tokens or _DEFAULT_MAX_TOKENS) - used


def fit_history(history: Sequence[Turn], budget: int) -> list[Turn]:
    """The newest turns whose tokens fit in `budget`, oldest first."""
    kept: list[Turn] = []
    for turn in reversed(history):
        cost = count_tokens(turn.query) + count_tokens(turn.answer) + 8  # role and separator overhead
        if cost > budget:
            break
        budget -= cost
        kept.append(turn)
    kept.reverse()
    return kept


def build_messages(
    cfg: AppConfig,
    inputs: Mapping[str, Any],
    query: str,
    history: Sequence[Turn] = (),
    context: str | None = None,
    images: Sequence[ImagePart] = (),
    context_size: int | None = None,
) -> list[ChatMessage]:
    """The prompt of one turn, for a chat model or (one user message) a completion model."""
    if cfg.model.mode == "completion":
        return [ChatMessage("user", _completion_prompt(cfg, inputs, query, history, context, context_size))]
    if cfg.prompt_type == "advanced":
        values = {**inputs, "#context#": context or "", "#query#": query}
        head = [
            ChatMessage(role if role in ("system", "user", "assistant") else "user", render(text, values))  # type: ignore[arg-type]  # checked
            for role, text in cfg.chat_prompt
        ]
        head = [m for m in head if m.content]
    else:
        system = (_CONTEXT_PROMPT.format(context=context) if context else "") + render(cfg.pre_prompt, inputs)
        if not query:  # completion apps: the rendered prompt is the user's message
            return [_user(system, images)]
        head = [ChatMessage("system", system)] if system else []
    last = _user(query, images) if query else None
    if history:
        fixed = [*head, *([last] if last else [])]
        history = fit_history(history, _budget(cfg, context_size, fixed))
    turns = [m for t in history for m in (ChatMessage("user", t.query), ChatMessage("assistant", t.answer))]
    return [*head, *turns, *([last] if last else [])]


def _completion_prompt(
    cfg: AppConfig,
    inputs: Mapping[str, Any],
    query: str,
    history: Sequence[Turn],
    context: str | None,
    context_size: int | None,
) -> str:
    human, assistant = cfg.history_prefixes
    if cfg.prompt_type == "advanced":
        template = cfg.completion_prompt
    else:
        template = (_CONTEXT_PROMPT.replace("{context}", "{{#context#}}") if context else "") + cfg.pre_prompt
        if history:
            template += "\n\n" + _COMPLETION_HISTORIES.replace("{histories}", "{{#histories#}}")
        if query:
            template += f"\n\n{human}: {{{{#query#}}}}\n\n{assistant}: "
    base = render(template, {**inputs, "#context#": context or "", "#query#": query, "#histories#": ""})
    if history and "{{#histories#}}" in template:
        kept = fit_history(history, _budget(cfg, context_size, [ChatMessage("user", base)]))
        text = "\n".join(f"{human}: {t.query}\n{assistant}: {t.answer}" for t in kept)
        return render(template, {**inputs, "#context#": context or "", "#query#": query, "#histories#": text})
    return base
