"""Azure OpenAI: deployment URL, api-version and api-key header, over real HTTP."""

from __future__ import annotations

from openify.providers.base import ChatMessage, LLMRequest
from tests.fake_llm.server import FakeLLM
from tests.providers.conftest import API_KEY, FAST, MakeManager


async def test_chat_goes_to_the_deployment_with_api_key(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager(
        {
            "azure_openai": {
                "base_url": fake_llm.base_url.removesuffix("/v1"),
                "api_key": API_KEY,
                "api_version": "2024-10-21",
                **FAST,
                "models": {"gpt-4o": {"deployment": "prod-4o"}},
            }
        }
    )
    fake_llm.reply("hi from azure")
    request = LLMRequest(model="gpt-4o", messages=[ChatMessage("user", "hello")])
    result = await manager.llm("langgenius/azure_openai/azure_openai", "gpt-4o").invoke(request)
    assert result.text == "hi from azure"
    headers = fake_llm.headers[-1]
    assert headers["api-key"] == API_KEY and "authorization" not in headers


def test_embeddings_through_azure(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager(
        {
            "azure_openai": {
                "base_url": fake_llm.base_url.removesuffix("/v1"),
                "api_key": API_KEY,
                **FAST,
            }
        }
    )
    vectors = manager.embedding("azure_openai", "text-embedding-3-small").embed(["a", "b"])
    assert len(vectors) == 2 and fake_llm.received[-1]["input"] == ["a", "b"]
    assert fake_llm.headers[-1]["api-key"] == API_KEY
