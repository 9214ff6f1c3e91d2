"""Azure OpenAI: OpenAI's protocol at /openai/deployments/{deployment}, an `api-key` header and `api-version`."""

from __future__ import annotations

from openify.providers.openai_compatible import OpenAICompatibleEmbedding, OpenAICompatibleLLM

DEFAULT_API_VERSION = "2024-10-21"


def _deployment_url(base_url: str | None, deployment: str, path: str, api_version: str | None) -> str:
    version = api_version or DEFAULT_API_VERSION
    return f"{(base_url or '').rstrip('/')}/openai/deployments/{deployment}{path}?api-version={version}"


def _key_header(key: str | None) -> dict[str, str]:
    return {"api-key": key} if key else {}


class AzureOpenAILLM(OpenAICompatibleLLM):
    """A chat deployment of Azure OpenAI; the DSL's model name is the deployment unless the model sets one."""

    def _url(self, path: str) -> str:
        config = self.target.config
        deployment = self.target.settings.deployment or self.target.model
        return _deployment_url(config.base_url, deployment, path, config.api_version)

    def _auth_headers(self) -> dict[str, str]:
        key = self.target.config.api_key
        return _key_header(key.get_secret_value() if key else None)


class AzureOpenAIEmbedding(OpenAICompatibleEmbedding):
    """An embedding deployment of Azure OpenAI."""

    def _url(self) -> str:
        config = self.target.config
        deployment = self.target.settings.deployment or self.target.model
        return _deployment_url(config.base_url, deployment, "/embeddings", config.api_version)

    def _headers(self) -> dict[str, str]:
        key = self.target.config.api_key
        return _key_header(key.get_secret_value() if key else None)
