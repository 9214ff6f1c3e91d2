"""The stand-in's own tests use its fixture (the root conftest may load it for everyone as well)."""

from tests.fake_llm.fixtures import _fake_llm_server, fake_llm  # noqa: F401
