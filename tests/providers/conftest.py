"""Fixtures of the provider tests. The lead's tests/conftest.py loads tests.fake_llm.fixtures for everyone."""

from tests.fake_llm.fixtures import _fake_llm_server, fake_llm  # noqa: F401
