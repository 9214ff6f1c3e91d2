"""The engine's ports, implemented by Openify's services: models, sandbox, HTTP, knowledge, conversation state."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from openify.engine.graph import Graph
from openify.engine.ports import ConversationHistory, HttpClient, KnowledgeRetriever, Ports
from openify.providers.base import ChatMessage, ModelResolver
from openify.security.document_limits import DocumentLimits
from openify.security.sandbox import Sandbox
from openify.services.workflows.conversation_variables import ConversationVariableStore
from openify.services.workflows.files import WorkflowFiles
from openify.storage.db import Database
from openify.storage.tables import App, Message


class KnowledgeAdapter:
    """`services.knowledge.retrieve_for_workflow`, sync or async, as the engine's KnowledgeRetriever."""

    def __init__(self, retrieve: Callable[..., Any]) -> None:
        self._retrieve = retrieve

    async def retrieve(
        self, dataset_ids: Sequence[str], query: str, config: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        if inspect.iscoroutinefunction(self._retrieve):
            records = await self._retrieve(list(dataset_ids), query, dict(config))
        else:
            records = await asyncio.to_thread(self._retrieve, list(dataset_ids), query, dict(config))
        return list(records)


class ChatHistory:
    """Earlier turns of a chatflow conversation from the chat area's message store, for LLM memory."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def messages(self, conversation_id: str, limit: int) -> Sequence[ChatMessage]:
        return await asyncio.to_thread(self._messages, conversation_id, limit)

    def _messages(self, conversation_id: str, limit: int) -> list[ChatMessage]:
        with self._db.session() as s:
            rows = s.execute(
                select(Message.query, Message.answer)
                .where(Message.conversation_id == conversation_id, Message.answer != "")
                .order_by(Message.created_at.desc())
                .limit(max(limit, 0))
            ).all()
        out: list[ChatMessage] = []
        for query, answer in reversed(rows):
            out += [ChatMessage("user", query), ChatMessage("assistant", answer)]
        return out


class WorkflowPorts:
    """Builds the Ports of one app's graph. Optional services (knowledge, chat history) are looked up on
    `services` when a graph is first run, so areas that land later plug in without changes here."""

    def __init__(
        self,
        db: Database,
        models: ModelResolver,
        sandbox: Sandbox,
        http: HttpClient,
        files: WorkflowFiles,
        services: object,
        document_limits: DocumentLimits | None = None,
    ) -> None:
        self._db, self._models, self._sandbox, self._services = db, models, sandbox, services
        self._document_limits = document_limits or DocumentLimits()
        self.http, self.files = http, files
        self.history: ConversationHistory = ChatHistory(db)

    def _knowledge(self) -> KnowledgeRetriever | None:
        retrieve = getattr(getattr(self._services, "knowledge", None), "retrieve_for_workflow", None)
        return KnowledgeAdapter(retrieve) if retrieve is not None else None

    def __call__(self, app: App, graph: Graph) -> Ports:
        return Ports(
            models=self._models,
            knowledge=self._knowledge(),
            conversation_variables=ConversationVariableStore(self._db, app.id, graph.conversation_variables),
            history=self.history,
            sandbox=self._sandbox,
            http=self.http,
            files=self.files.for_app(app.id),
            document_limits=self._document_limits,
            tools=getattr(self._services, "tools", None),
        )
