"""`knowledge-retrieval`: the query goes to the knowledge port; records come back in Dify's shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector


class KnowledgeRetrievalNode(Node):
    type = "knowledge-retrieval"

    async def run(self, ctx: NodeContext) -> NodeResult:
        sel = selector(self.data.get("query_variable_selector"))
        if not sel:  # Dify: no query selector is a success with no outputs
            return NodeResult()
        query = ctx.pool.get(sel)
        if query is None:
            query = ""
        if not isinstance(query, str):
            raise NodeError("Query variable is not string type.", "KnowledgeRetrievalNodeError")
        dataset_ids = [str(i) for i in self.data.get("dataset_ids") or []]
        inputs = {"query": query}
        if not query or not dataset_ids:
            return NodeResult(outputs={"result": []}, inputs=inputs)
        records = await ctx.require("knowledge").retrieve(dataset_ids, query, self.data)
        result = []
        for position, rec in enumerate(records, start=1):
            meta = dict(rec.get("metadata") or {}) if isinstance(rec, Mapping) else {}
            meta.setdefault("_source", "knowledge")
            meta.setdefault("retriever_from", "workflow")
            meta.setdefault("position", position)
            result.append({**rec, "metadata": meta})
        return NodeResult(outputs={"result": result}, inputs=inputs)


def register(r: Any) -> None:
    r.nodes.register(KnowledgeRetrievalNode.type, KnowledgeRetrievalNode)
