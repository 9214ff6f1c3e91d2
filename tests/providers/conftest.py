"""Fixtures of the provider tests: a ProviderManager whose providers all point at the stand-in server.

`fake_llm` comes from tests.fake_llm.fixtures, which the root conftest loads as a plugin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from openify.providers import plugins
from openify.providers.config import build_providers
from openify.providers.manager import ProviderManager
from openify.registry import Registries
from openify.settings import Settings
from tests.fake_llm.server import FakeLLM

API_KEY = "sk-test-very-secret-0123456789"
FAST = {"retry_backoff_s": 0.01, "read_timeout_s": 5.0, "connect_timeout_s": 2.0}

MakeManager = Callable[..., ProviderManager]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path)


@pytest.fixture
async def make_manager(settings: Settings) -> AsyncIterator[MakeManager]:
    """Build a ProviderManager from provider entries as providers.yaml would hold them; closed after the test."""
    made: list[ProviderManager] = []

    def make(providers: dict[str, dict[str, Any]], default: str | None = None) -> ProviderManager:
        registries = Registries()
        plugins.register(registries)  # only ours: the other built-ins are not under test here
        manager = ProviderManager(settings, registries, build_providers(providers, default))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.aclose()
        manager.close()


@pytest.fixture
def manager(make_manager: MakeManager, fake_llm: FakeLLM) -> ProviderManager:
    """`openai` (and its plugin id) served by the stand-in, with fast retries."""
    return make_manager({"openai": {"base_url": fake_llm.base_url, "api_key": API_KEY, **FAST}})
