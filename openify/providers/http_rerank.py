"""Rerank over HTTP in the Jina/Cohere shape (POST {base_url}/rerank), as Jina, Cohere, SiliconFlow,
vLLM, Xinference and Text Embeddings Inference serve it."""

from __future__ import annotations

from collections.abc import Sequence

from openify.providers.clients import ClientPool
from openify.providers.config import ModelTarget
from openify.providers.failures import UpstreamStatusError


class HttpRerankModel:
    """Scores documents against a query; scores are the provider's relevance_score, clipped to [0, 1]."""

    def __init__(self, target: ModelTarget, clients: ClientPool) -> None:
        self.target, self._clients = target, clients
        self.name = target.model

    def __repr__(self) -> str:
        return f"HttpRerankModel(provider={self.target.provider!r}, model={self.name!r})"

    def rerank(self, query: str, documents: Sequence[str], top_n: int | None = None) -> list[tuple[int, float]]:
        if not documents:
            return []
        config = self.target.config
        url = (config.base_url or "").rstrip("/") + "/rerank"
        headers = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"} if config.api_key else {}
        body = {"model": self.name, "query": query, "documents": list(documents), "return_documents": False}
        if top_n is not None:
            body["top_n"] = top_n
        answer = self._clients.post_json(self.target, url, headers, body)
        results = answer.get("results", answer.get("data")) if isinstance(answer, dict) else answer
        if not isinstance(results, list):
            raise UpstreamStatusError(502, "rerank answer has no results list")
        scored = [
            (int(r["index"]), min(1.0, max(0.0, float(r.get("relevance_score", r.get("score", 0.0))))))
            for r in results
            if 0 <= int(r["index"]) < len(documents)
        ]
        scored.sort(key=lambda pair: -pair[1])
        return scored[:top_n] if top_n is not None else scored
