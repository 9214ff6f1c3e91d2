"""Built-in model providers (a plugin module: `register(r)`).

Registry names are provider *types* (`type:` in providers.yaml); each item is a factory
`(target: ModelTarget, clients: ClientPool) -> LLM | EmbeddingModel | RerankModel`.
"""

from __future__ import annotations

from openify.providers.anthropic import AnthropicLLM
from openify.providers.azure_openai import AzureOpenAIEmbedding, AzureOpenAILLM
from openify.providers.embedded import embedded_model
from openify.providers.http_rerank import HttpRerankModel
from openify.providers.openai_compatible import OpenAICompatibleEmbedding, OpenAICompatibleLLM
from openify.registry import Registries


def register(r: Registries) -> None:
    """Register the built-in LLM, embedding and rerank providers."""
    r.llm_providers.register("openai_compatible", OpenAICompatibleLLM)
    r.llm_providers.register("azure_openai", AzureOpenAILLM)
    r.llm_providers.register("anthropic", AnthropicLLM)
    r.embedding_providers.register("openai_compatible", OpenAICompatibleEmbedding)
    r.embedding_providers.register("azure_openai", AzureOpenAIEmbedding)
    r.embedding_providers.register("embedded", embedded_model)
    r.rerank_providers.register("openai_compatible", HttpRerankModel)
