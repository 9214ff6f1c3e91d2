"""Built-in model providers (a plugin module: `register(r)`).

Registry names are provider *types* (`type:` in providers.yaml); each item is a factory
`(target: ModelTarget, clients: ClientPool) -> LLM | EmbeddingModel | RerankModel | SpeechToTextModel | ...`.
"""

from __future__ import annotations

from openify.providers.anthropic import AnthropicLLM
from openify.providers.audio import OpenAISpeechToText, OpenAITextToSpeech
from openify.providers.azure_openai import AzureOpenAIEmbedding, AzureOpenAILLM
from openify.providers.embedded import embedded_model
from openify.providers.http_rerank import HttpRerankModel
from openify.providers.moderation import OpenAIModeration
from openify.providers.openai_compatible import OpenAICompatibleEmbedding, OpenAICompatibleLLM
from openify.registry import Registries


def register(r: Registries) -> None:
    """Register the built-in LLM, embedding, rerank and speech providers."""
    r.llm_providers.register("openai_compatible", OpenAICompatibleLLM)
    r.llm_providers.register("azure_openai", AzureOpenAILLM)
    r.llm_providers.register("anthropic", AnthropicLLM)
    r.embedding_providers.register("openai_compatible", OpenAICompatibleEmbedding)
    r.embedding_providers.register("azure_openai", AzureOpenAIEmbedding)
    r.embedding_providers.register("embedded", embedded_model)
    r.rerank_providers.register("openai_compatible", HttpRerankModel)
    r.speech_to_text_providers.register("openai_compatible", OpenAISpeechToText)
    r.text_to_speech_providers.register("openai_compatible", OpenAITextToSpeech)
    r.moderation_providers.register("openai_compatible", OpenAIModeration)
