"""Shared pieces of the chat API tests: settings whose every model provider is the stand-in, app fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from openify.services.container import Services
from openify.settings import Settings
from tests.conftest import DSL_DIR, AppKit, import_app

__all__ = ["AppKit", "Services", "import_app"]
from tests.fake_llm.server import FakeLLM

CHAT_DSL = DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml"
COMPLETION_DSL = DSL_DIR / "25-completion-noversion-sql-creator.yml"


def providers_yaml(fake_llm: FakeLLM, **models: dict[str, Any]) -> str:
    """Every DSL provider name reaches the stand-in (`default`), with fast retries."""
    entry = {
        "type": "openai_compatible",
        "base_url": fake_llm.base_url,
        "api_key": "sk-test-0123456789",
        "max_retries": 0,
        "read_timeout_s": 10.0,
        "connect_timeout_s": 2.0,
        "models": models,
    }
    return yaml.safe_dump({"default": "fake", "providers": {"fake": entry}})


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "providers.yaml").write_text(providers_yaml(fake_llm), encoding="utf-8")
    return Settings(_env_file=None, data_dir=data, database_url=database_url)  # type: ignore[call-arg]


@pytest.fixture
def chat(services: Services) -> AppKit:
    return import_app(services, CHAT_DSL)


@pytest.fixture
def completion(services: Services) -> AppKit:
    return import_app(services, COMPLETION_DSL)


def chat_dsl(mode: str = "chat", **model_config: Any) -> str:
    """A small easy-UI app; `model_config` keys override the defaults."""
    mc: dict[str, Any] = {
        "model": {"provider": "openai", "name": "gpt-4o-mini", "mode": "chat", "completion_params": {}},
        "pre_prompt": "You are helpful.",
        "prompt_type": "simple",
        "user_input_form": [],
        "opening_statement": "",
        **model_config,
    }
    return yaml.safe_dump(
        {"version": "0.3.1", "kind": "app", "app": {"mode": mode, "name": f"t-{mode}"}, "model_config": mc},
        allow_unicode=True,
    )


def sse_events(text: str) -> list[dict[str, Any]]:
    """The data frames of an SSE body, decoded; pings are dropped."""
    return [json.loads(block[len("data: ") :]) for block in text.split("\n\n") if block.startswith("data: ")]


async def blocking(client: httpx.AsyncClient, kit: AppKit, **body: Any) -> httpx.Response:
    payload = {"inputs": {}, "user": "u1", "response_mode": "blocking", **body}
    return await client.post("/v1/chat-messages", headers=kit.auth, json=payload)


async def streaming(client: httpx.AsyncClient, kit: AppKit, **body: Any) -> list[dict[str, Any]]:
    payload = {"inputs": {}, "user": "u1", "response_mode": "streaming", **body}
    r = await client.post("/v1/chat-messages", headers=kit.auth, json=payload)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return sse_events(r.text)
