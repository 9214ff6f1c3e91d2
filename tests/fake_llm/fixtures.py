"""pytest fixtures of the stand-in model server: one server per session, its script reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_llm.server import FakeLLM


@pytest.fixture(scope="session")
def _fake_llm_server() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake_llm(_fake_llm_server: FakeLLM) -> Iterator[FakeLLM]:
    """The stand-in model server at `fake_llm.base_url`, with nothing scripted or received."""
    _fake_llm_server.reset()
    yield _fake_llm_server
    _fake_llm_server.reset()
