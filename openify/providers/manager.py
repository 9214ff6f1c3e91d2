"""ProviderManager: the ModelResolver of Openify. Maps a DSL's (provider, model) to a configured provider.

DSL files name providers as Dify does: `openai`, or the plugin id `langgenius/openai/openai`. The last path
segment is the provider name; it matches a configured provider by name or by one of its `aliases`, else
the providers file's `default`, else the call fails with `provider_not_initialize` (imports never fail).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from openify.errors import ModelCurrentlyNotSupport, ProviderNotInitialized
from openify.providers.base import (
    LLM,
    EmbeddingModel,
    ModerationModel,
    RerankModel,
    SpeechToTextModel,
    TextToSpeechModel,
)
from openify.providers.clients import ClientPool
from openify.providers.config import (
    ModelConfig,
    ModelTarget,
    ModelType,
    ProviderConfig,
    ProvidersFile,
    ProvidersFileError,
    load_providers,
)
from openify.providers.embedded import ALIASES as EMBEDDED_MODELS
from openify.providers.embedded import DIMENSIONS, EMBEDDED_PROVIDER
from openify.providers.moderation import OPENAI_MODERATION_MODEL
from openify.registry import Registries, Registry
from openify.settings import Settings

_EMBEDDED_CONFIG = ProviderConfig(type="embedded", label="Openify embedded")
_FEATURES = {"llm": ["tool-call", "multi-tool-call", "stream-tool-call", "vision"], "text-embedding": [], "rerank": []}


def provider_name(dsl_name: str) -> str:
    """`langgenius/openai/openai` -> `openai`; a plain name is returned as is."""
    return dsl_name.strip().rstrip("/").rsplit("/", 1)[-1]


class ProviderManager:
    """Resolves DSL model references to LLM, embedding and rerank models of the configured providers."""

    def __init__(self, settings: Settings, registries: Registries, providers: ProvidersFile | None = None) -> None:
        self._settings, self._registries = settings, registries
        self._clients = ClientPool()
        self._file, self._names = self._index(providers if providers is not None else load_providers(settings))

    def _index(self, file: ProvidersFile) -> tuple[ProvidersFile, dict[str, str]]:
        names: dict[str, str] = {}
        known = (
            self._registries.llm_providers,
            self._registries.embedding_providers,
            self._registries.rerank_providers,
        )
        for name, config in file.providers.items():
            if not any(config.type in registry for registry in known):
                raise ProvidersFileError(f"provider {name!r}: unknown type {config.type!r}")
            for alias in [name, *config.aliases]:
                names.setdefault(alias, name)
        if file.default is not None and file.default not in file.providers:
            raise ProvidersFileError(f"default provider {file.default!r} is not configured")
        return file, names

    def reload(self, providers: ProvidersFile | None = None) -> None:
        """Take a new configuration in place (everyone holding this manager sees it). Nothing changes when
        the new configuration is invalid: ProvidersFileError is raised first."""
        file, names = self._index(providers if providers is not None else load_providers(self._settings))
        self._file, self._names = file, names

    def __repr__(self) -> str:
        return f"ProviderManager(providers={sorted(self._file.providers)}, default={self._file.default!r})"

    @property
    def providers(self) -> ProvidersFile:
        return self._file

    def find_provider(self, dsl_name: str) -> str | None:
        """The configured provider a DSL provider name reaches, or None."""
        name = provider_name(dsl_name)
        return self._names.get(name) or self._file.default

    def _target(self, dsl_name: str, model: str) -> ModelTarget:
        configured = self.find_provider(dsl_name)
        if configured is None:
            raise ProviderNotInitialized(
                f"Model provider {provider_name(dsl_name)!r} is not configured: add its credentials to the "
                f"environment or {self._settings.providers_file.name}."
            )
        config = self._file.providers[configured]
        return ModelTarget(configured, config, model, config.models.get(model) or ModelConfig())

    def llm(self, provider: str, model: str) -> LLM:
        target = self._target(provider, model)
        factory = self._registries.llm_providers.find(target.config.type)
        if factory is None:
            raise ModelCurrentlyNotSupport(f"Provider {target.provider!r} offers no LLMs.")
        llm: LLM = factory(target, self._clients)
        return llm

    def embedding(self, provider: str | None = None, model: str | None = None) -> EmbeddingModel:
        if provider is None or provider_name(provider) in (EMBEDDED_PROVIDER, "embedded"):
            if model is None or model in EMBEDDED_MODELS:
                return self._embedded(model or self._settings.embedding.default_model)
            provider = self._provider_declaring(model, "text-embedding")
        if model is None:
            raise ProviderNotInitialized(f"No embedding model named for provider {provider!r}.")
        target = self._target(provider, model)
        factory = self._registries.embedding_providers.find(target.config.type)
        if factory is None:
            raise ModelCurrentlyNotSupport(f"Provider {target.provider!r} offers no embedding models.")
        embedding: EmbeddingModel = factory(target, self._clients)
        return embedding

    def rerank(self, provider: str, model: str) -> RerankModel:
        target = self._target(provider, model)
        factory = self._registries.rerank_providers.find(target.config.type)
        if factory is None:
            raise ModelCurrentlyNotSupport(f"Provider {target.provider!r} offers no rerank models.")
        rerank: RerankModel = factory(target, self._clients)
        return rerank

    def speech_to_text(self) -> SpeechToTextModel:
        model: SpeechToTextModel = self._default_of("speech2text", self._registries.speech_to_text_providers)
        return model

    def text_to_speech(self) -> TextToSpeechModel:
        model: TextToSpeechModel = self._default_of("tts", self._registries.text_to_speech_providers)
        return model

    def moderation(self) -> ModerationModel:
        """Dify's `openai_moderation` calls provider `openai`'s omni-moderation-latest: here the first model
        providers.yaml declares as `model_type: moderation`, else that model on the provider `openai` reaches."""
        try:
            found: ModerationModel = self._default_of("moderation", self._registries.moderation_providers)
            return found
        except ProviderNotInitialized:
            target = self._target("openai", OPENAI_MODERATION_MODEL)
        factory = self._registries.moderation_providers.find(target.config.type)
        if factory is None:
            raise ModelCurrentlyNotSupport(f"Provider {target.provider!r} offers no moderation models.")
        model: ModerationModel = factory(target, self._clients)
        return model

    def _default_of(self, model_type: ModelType, registry: Registry[Any]) -> Any:
        """Dify's workspace default model of a type: here the first such model providers.yaml declares."""
        for name, config in self._file.providers.items():
            for model, declared in config.models.items():
                if declared.model_type == model_type:
                    target = self._target(name, model)
                    factory = registry.find(target.config.type)
                    if factory is None:
                        raise ModelCurrentlyNotSupport(f"Provider {name!r} offers no {model_type} models.")
                    return factory(target, self._clients)
        raise ProviderNotInitialized(f"Default model not found for {model_type}")

    def _embedded(self, model: str) -> EmbeddingModel:
        factory = self._registries.embedding_providers.get("embedded")
        embedding: EmbeddingModel = factory(
            ModelTarget(EMBEDDED_PROVIDER, _EMBEDDED_CONFIG, model, ModelConfig(model_type="text-embedding")),
            self._clients,
        )
        return embedding

    def _provider_declaring(self, model: str, model_type: ModelType) -> str:
        for name, config in self._file.providers.items():
            declared = config.models.get(model)
            if declared is not None and declared.model_type == model_type:
                return name
        raise ProviderNotInitialized(f"No configured provider offers the embedding model {model!r}.")

    def list_models(self, model_type: str, tenant_id: str = "") -> dict[str, Any]:
        """Body of Dify's `GET /workspaces/current/models/model-types/{model_type}`: configured models."""
        data: list[dict[str, Any]] = []
        if model_type == "text-embedding":
            models = [
                _model_entry(
                    name,
                    "text-embedding",
                    {"context_size": 512, "max_chunks": 64, "dimensions": dims},
                    fetch_from="predefined-model",
                )
                for name, dims in DIMENSIONS.items()
            ]
            data.append(_provider_entry(EMBEDDED_PROVIDER, "Openify embedded", tenant_id, models))
        for name, config in self._file.providers.items():
            models = [
                _model_entry(model, model_type, _properties(model_type, settings), settings.label, settings.features)
                for model, settings in config.models.items()
                if settings.model_type == model_type
            ]
            by_type: dict[str, Container[str]] = {
                "llm": self._registries.llm_providers,
                "text-embedding": self._registries.embedding_providers,
                "rerank": self._registries.rerank_providers,
            }
            offers = by_type.get(model_type)
            if models or (model_type == "llm" and offers is not None and config.type in offers):
                data.append(_provider_entry(name, config.label or name, tenant_id, models))
        return {"data": data}

    async def aclose(self) -> None:
        """Close the HTTP clients (the app's lifespan calls this)."""
        await self._clients.aclose()

    def close(self) -> None:
        """Close the sync HTTP clients (embedding and rerank), for callers without an event loop."""
        self._clients.close_sync()


def _properties(model_type: str, settings: ModelConfig) -> dict[str, Any]:
    if model_type == "llm":
        return {"mode": settings.mode, "context_size": settings.context_size or 4096}
    if model_type == "text-embedding":
        return {"context_size": settings.context_size or 8192, "max_chunks": 64}
    return {"context_size": settings.context_size or 8192}


def _label(text: str) -> dict[str, str]:
    return {"en_US": text, "zh_Hans": text}


def _model_entry(
    model: str,
    model_type: str,
    properties: dict[str, Any],
    label: str | None = None,
    features: list[str] | None = None,
    fetch_from: str = "customizable-model",
) -> dict[str, Any]:
    return {
        "model": model,
        "label": _label(label or model),
        "model_type": model_type,
        "features": features if features is not None else _FEATURES.get(model_type, []),
        "fetch_from": fetch_from,
        "model_properties": properties,
        "status": "active",
        "deprecated": False,
        "load_balancing_enabled": False,
        "has_invalid_load_balancing_configs": False,
    }


def _provider_entry(name: str, label: str, tenant_id: str, models: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "provider": name,
        "label": _label(label),
        "icon_small": None,
        "icon_small_dark": None,
        "status": "active",
        "tenant_id": tenant_id,
        "models": models,
    }
