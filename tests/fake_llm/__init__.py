"""A stand-in OpenAI-compatible model server on loopback for tests and benchmarks."""

from tests.fake_llm.server import FakeLLM, hash_vector, split_tokens

__all__ = ["FakeLLM", "hash_vector", "split_tokens"]
