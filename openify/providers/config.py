"""Provider configuration: the OpenAI/Anthropic/Azure variables of Settings plus the optional providers file.

`data_dir/providers.yaml` declares any number of providers, keyed by the name DSL files use::

    default: local            # optional: serves every DSL provider name not configured below
    providers:
      deepseek:               # type, base_url default from the name (see _KNOWN); api_key is all it needs
        api_key: sk-...
        models:
          deepseek-chat: {context_size: 65536, input_price: 0.27, output_price: 1.10}  # USD per 1M tokens
      local:
        type: openai_compatible
        base_url: http://127.0.0.1:11434/v1
        aliases: [ollama, openai_api_compatible]
        models:
          qwen2.5:7b: {mode: chat, context_size: 32768}
          bge-m3: {model_type: text-embedding, dimensions: 1024}
          bge-reranker-v2-m3: {model_type: rerank}
          whisper-1: {model_type: speech2text}             # /audio-to-text uses the first one declared
          tts-1: {model_type: tts, voices: [alloy, nova]}  # /text-to-audio likewise

An entry named like a Settings-configured provider (`openai`, `anthropic`, `azure_openai`) overrides
those variables field by field. Without `default`, a DSL provider name that is not configured fails at
call time with `provider_not_initialize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from openify.settings import Settings

ModelType = Literal["llm", "text-embedding", "rerank", "speech2text", "tts", "moderation"]

# Dify provider names whose API speaks OpenAI's protocol at a well-known address.
_KNOWN: dict[str, tuple[str, str]] = {
    "openai": ("openai_compatible", "https://api.openai.com/v1"),
    "anthropic": ("anthropic", "https://api.anthropic.com"),
    "azure_openai": ("azure_openai", ""),
    "deepseek": ("openai_compatible", "https://api.deepseek.com/v1"),
    "moonshot": ("openai_compatible", "https://api.moonshot.cn/v1"),
    "tongyi": ("openai_compatible", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
    "zhipuai": ("openai_compatible", "https://open.bigmodel.cn/api/paas/v4"),
    "siliconflow": ("openai_compatible", "https://api.siliconflow.cn/v1"),
    "volcengine_maas": ("openai_compatible", "https://ark.cn-beijing.volces.com/api/v3"),
    "ollama": ("openai_compatible", "http://127.0.0.1:11434/v1"),
    "groq": ("openai_compatible", "https://api.groq.com/openai/v1"),
    "mistralai": ("openai_compatible", "https://api.mistral.ai/v1"),
    "openrouter": ("openai_compatible", "https://openrouter.ai/api/v1"),
    "x": ("openai_compatible", "https://api.x.ai/v1"),
    "minimax": ("openai_compatible", "https://api.minimax.chat/v1"),
    "baichuan": ("openai_compatible", "https://api.baichuan-ai.com/v1"),
    "stepfun": ("openai_compatible", "https://api.stepfun.com/v1"),
    "jina": ("openai_compatible", "https://api.jina.ai/v1"),
    "gpustack": ("openai_compatible", "http://127.0.0.1/v1"),
    "lm_studio": ("openai_compatible", "http://127.0.0.1:1234/v1"),
}


class ProvidersFileError(ValueError):
    """providers.yaml cannot be read or does not match the schema (raised at startup)."""


class ModelConfig(BaseModel):
    """Per-model settings of one provider."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_type: ModelType = "llm"
    label: str | None = None
    mode: Literal["chat", "completion"] = "chat"
    context_size: int | None = None
    dimensions: int | None = Field(default=None, description="Embedding size; probed on first use when unset.")
    deployment: str | None = Field(default=None, description="Azure deployment name; the model name when unset.")
    input_price: Decimal = Decimal("0")
    output_price: Decimal = Decimal("0")
    price_per: Literal["1M", "1K"] = "1M"
    currency: str = "USD"
    features: list[str] | None = Field(
        default=None, description="tool-call, vision, ...; provider defaults when unset."
    )
    tokenizer: Literal["tiktoken", "estimate"] | None = None
    voices: list[str] | None = Field(default=None, description="TTS voices; OpenAI's six when unset.")

    @property
    def price_unit(self) -> Decimal:
        return Decimal("0.000001") if self.price_per == "1M" else Decimal("0.001")


class ProviderConfig(BaseModel):
    """One configured provider: where it is, how to authenticate, how patient to be."""

    model_config = ConfigDict(extra="forbid")

    type: str = "openai_compatible"
    label: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    aliases: list[str] = Field(default_factory=list)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = Field(default=120.0, description="Longest wait for the next bytes of an answer.")
    max_retries: int = Field(default=2, description="Retries on 429, 5xx and connection errors before the first token.")
    retry_backoff_s: float = Field(default=0.5, description="First backoff; doubles on each retry, jittered.")


class ProvidersFile(BaseModel):
    """The providers Openify can call: Settings' variables merged with providers.yaml."""

    model_config = ConfigDict(extra="forbid")

    default: str | None = None
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """One model of one configured provider, as a provider class needs it."""

    provider: str  # the configured name (`openai`, `deepseek`, ...), used in error messages and usage
    config: ProviderConfig
    model: str
    settings: ModelConfig

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values scrubbed from every message that leaves the provider layer."""
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        return (key,) if len(key) >= 4 else ()


def load_providers(settings: Settings) -> ProvidersFile:
    """Settings' provider variables, overridden and extended by `settings.providers_file` when it exists."""
    raw: dict[str, dict[str, Any]] = _from_settings(settings)
    default: str | None = None
    path: Path = settings.providers_file
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ProvidersFileError(f"{path}: {exc}") from None
        if not isinstance(loaded, dict) or not isinstance(loaded.get("providers", {}), dict):
            raise ProvidersFileError(f"{path}: expected a mapping with `providers:` and optional `default:`")
        default = loaded.get("default")
        for name, entry in (loaded.get("providers") or {}).items():
            raw[str(name)] = {**raw.get(str(name), {}), **(entry or {})}
    try:
        return build_providers(raw, default)
    except ValidationError as exc:
        # pydantic never echoes SecretStr input, so the message is safe to show
        raise ProvidersFileError(f"{path}: {exc}") from None


def build_providers(raw: dict[str, dict[str, Any]], default: str | None = None) -> ProvidersFile:
    """Validate provider entries, filling `type` and `base_url` from the provider name where Dify knows it."""
    providers = {}
    for name, entry in raw.items():
        kind, url = _KNOWN.get(name, ("openai_compatible", ""))
        entry = {"type": kind, **entry}
        if not entry.get("base_url") and url and entry["type"] == kind:
            entry["base_url"] = url
        providers[name] = ProviderConfig.model_validate(entry)
    return ProvidersFile(default=default, providers=providers)


def _from_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    raw: dict[str, dict[str, Any]] = {}
    if settings.openai_api_key or settings.openai_base_url:
        raw["openai"] = _entry(settings.openai_api_key, base_url=settings.openai_base_url)
    if settings.anthropic_api_key:
        raw["anthropic"] = _entry(settings.anthropic_api_key, base_url=settings.anthropic_base_url)
    if settings.azure_openai_api_key and settings.azure_openai_endpoint:
        raw["azure_openai"] = _entry(
            settings.azure_openai_api_key,
            base_url=settings.azure_openai_endpoint,
            api_version=settings.azure_openai_api_version,
        )
    return raw


def _entry(key: SecretStr | None, **fields: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {k: v for k, v in fields.items() if v}
    if key is not None:
        entry["api_key"] = key  # stays a SecretStr: pydantic accepts it as is
    return entry
