"""Chatflows (advanced-chat apps): one turn of /chat-messages is one workflow run whose Answer nodes stream.

The conversation and message are stored through the chat area's stores, so GET /conversations and /messages
work for chatflows as for chat apps; conversation variables persist between turns through the engine's port.
"""

from __future__ import annotations

import asyncio
import calendar
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from openify.engine.events import NodeFinished, WorkflowFinished
from openify.errors import InvalidParam
from openify.providers.base import ModelResolver
from openify.services.annotations import AnnotationService
from openify.services.app_parameters import features_of
from openify.services.chat import moderation
from openify.services.chat.config import Moderation, moderation_of
from openify.services.chat.conversations import ConversationService
from openify.services.chat.messages import MessageService
from openify.services.end_users import EndUserService
from openify.services.workflows.live import LiveRun
from openify.services.workflows.runs import WorkflowRunService
from openify.storage.db import Database
from openify.storage.tables import App, Conversation, ConversationVariable, Message


class ChatTurn(Protocol):
    """What /chat-messages parsed (openify.services.chat.TurnRequest fits)."""

    @property
    def user(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def query(self) -> str: ...
    @property
    def conversation_id(self) -> str | None: ...
    @property
    def files(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ChatflowTurn:
    """A started chatflow turn: the live run and the message it answers."""

    live: LiveRun
    conversation_id: str
    message_id: str
    created_at: int


@dataclass(frozen=True, slots=True)
class AnnotatedTurn:
    """A chatflow turn that an annotation (annotation reply) or input moderation answered: no workflow ran; the
    message is stored with that answer."""

    task_id: str
    conversation_id: str
    message_id: str
    created_at: int
    annotation_id: str | None  # None: input moderation answered with its preset response
    answer: str


@dataclass(frozen=True, slots=True)
class TurnUsage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency: float


def _initial_name(query: str) -> str:
    # Dify names a new conversation after the query's first 20 characters until a title is generated.
    return query[:20] + "…" if len(query) > 20 else query


# Titles a new conversation with a model: (app, conversation id, first query).
ConversationNamer = Callable[[App, str, str], Awaitable[None]]


class ChatflowService:
    def __init__(
        self,
        db: Database,
        runs: WorkflowRunService,
        end_users: EndUserService,
        namer: ConversationNamer | None = None,
        annotations: AnnotationService | None = None,
        models: ModelResolver | None = None,
    ) -> None:
        self._db, self._runs, self._end_users, self._namer = db, runs, end_users, namer
        self._models = models
        self._annotations = annotations
        self._naming: set[asyncio.Task[None]] = set()

    async def start(self, app: App, turn: ChatTurn, workflow_id: str | None = None) -> ChatflowTurn | AnnotatedTurn:
        """Validate, store the conversation and running message, and start the run. InvalidParam before any write.
        With annotation reply on, a query an annotation answers runs no workflow (Dify's handle_annotation_reply)."""
        end_user = await self._runs.end_user(app.id, turn.user)
        version = await self._runs.aversion_of(app, workflow_id)
        runner = self._runs.runner_for(app, version)
        inputs = self._runs.prepare_inputs(runner, turn.inputs)
        self._runs.check_file_count(runner, inputs, list(turn.files))
        # Dify's advanced-chat runner: input moderation first, then annotation reply, then the workflow.
        mod = moderation_of(features_of(app).get("sensitive_word_avoidance"))
        blocked = await self._input_flagged(mod, turn.query, inputs)
        reply = None
        if not blocked and self._annotations is not None:
            reply = await self._annotations.reply_for(app.id, turn.query)
        run_id = None if reply is not None or blocked else str(uuid.uuid4())
        declared = runner.graph.conversation_variables
        answer = mod.input_preset if blocked else reply.answer if reply is not None else None
        store = self._store_turn
        conv, msg = await asyncio.to_thread(store, app, end_user.id, turn, inputs, run_id, declared, answer)
        created = calendar.timegm(msg.created_at.timetuple())
        created_now = conv.id != turn.conversation_id  # no id, or an unknown one: a conversation started now
        name_it = created_now and bool(getattr(turn, "auto_generate_name", True)) and bool(turn.query)

        def name_conversation() -> None:
            if name_it and self._namer is not None:
                # Off the hot path, as in chat apps: the answer never waits for the title.
                task = asyncio.create_task(self._namer(app, conv.id, turn.query))
                self._naming.add(task)
                task.add_done_callback(self._naming.discard)

        if blocked:
            name_conversation()
            return AnnotatedTurn(str(uuid.uuid4()), conv.id, msg.id, created, None, answer or "")
        if reply is not None:
            name_conversation()
            return AnnotatedTurn(str(uuid.uuid4()), conv.id, msg.id, created, reply.annotation_id, reply.answer)
        assert run_id is not None  # noqa: S101 - narrowing for mypy

        async def on_finish(live: LiveRun, finished: WorkflowFinished) -> None:
            if finished.status == "succeeded" and self._models is not None:
                if await moderation.output_flagged(mod, self._models, finished.answer):
                    live.answer_replaced = mod.output_preset
            await self._finish(live, finished)
            if finished.status == "succeeded":
                name_conversation()

        live = await self._runs.start(
            app,
            end_user,
            turn.inputs,
            files=list(turn.files),
            workflow_id=workflow_id,
            query=turn.query,
            conversation_id=conv.id,
            message_id=msg.id,
            message_created_at=created,
            dialogue_count=conv.dialogue_count,
            on_finish=on_finish,
            run_id=run_id,
            prepared_inputs=inputs,
        )
        return ChatflowTurn(live, conv.id, msg.id, created)

    def _store_turn(
        self,
        app: App,
        end_user_id: str,
        turn: ChatTurn,
        inputs: dict[str, Any],
        run_id: str | None,
        declared: Sequence[Mapping[str, Any]],
        answer: str | None = None,
    ) -> tuple[Conversation, Message]:
        """The conversation (new or found) and the turn's message, running; with `answer` (annotation reply)
        the message is stored answered, in the same transaction."""
        with self._db.session() as s:
            conv = None
            if turn.conversation_id:
                # Dify's chatflow silently starts a new conversation for an unknown id (advanced_chat/app_generator.py).
                found = s.get(Conversation, turn.conversation_id)
                if found is not None and found.app_id == app.id and found.end_user_id == end_user_id:
                    if found.status != "normal":
                        raise InvalidParam("Conversation is not normal.")
                    conv = found
            new = conv is None
            if conv is None:
                conv = ConversationService.new(app.id, end_user_id, app.mode, inputs, _initial_name(turn.query))
                conv.dialogue_count = 1  # before the flush: the row is expunged below, later changes would be lost
                s.add(conv)
                s.flush()
                # Dify creates every declared conversation variable with its default when the conversation starts.
                for var in declared:
                    if var.get("name"):
                        s.add(
                            ConversationVariable(
                                app_id=app.id,
                                conversation_id=conv.id,
                                name=str(var["name"]),
                                value_type=str(var.get("value_type") or "string"),
                                value=var.get("value"),
                                description=str(var.get("description") or ""),
                            )
                        )
            msg = MessageService.new(conv, turn.query, inputs, list(turn.files), workflow_run_id=run_id)
            if answer is not None:
                msg.answer, msg.status = answer, "normal"
            s.add(msg)
            if not new:
                MessageService.bump(s, conv.id, msg.created_at)
                s.flush()
                s.refresh(conv)
            s.expunge(conv)
            return conv, msg

    def usage(self, live: LiveRun, finished: WorkflowFinished) -> TurnUsage:
        """Tokens of the turn's LLM nodes (Dify's message usage)."""
        prompt = completion = 0
        for ev in live.events:
            if type(ev) is NodeFinished:
                u = ev.outputs.get("usage") if isinstance(ev.outputs, Mapping) else None
                if isinstance(u, Mapping):
                    prompt += int(u.get("prompt_tokens") or 0)
                    completion += int(u.get("completion_tokens") or 0)
        return TurnUsage(prompt, completion, finished.total_tokens or prompt + completion, finished.elapsed_time)

    async def _input_flagged(self, mod: Moderation, query: str, inputs: Mapping[str, Any]) -> bool:
        if mod.input_preset is None or self._models is None:
            return False
        texts = (query, *(v for v in inputs.values() if isinstance(v, str)))
        return await moderation.flagged(mod, self._models, *texts)

    async def _finish(self, live: LiveRun, finished: WorkflowFinished) -> None:
        """Store the message's answer and status before the stream announces the end."""
        if live.message_id is None:
            return
        u = self.usage(live, finished)
        status = "error" if finished.status == "failed" else "normal"
        answer = live.answer_replaced if live.answer_replaced is not None else finished.answer
        await asyncio.to_thread(self._complete, live.message_id, finished, status, u, answer)

    def _complete(self, message_id: str, finished: WorkflowFinished, status: str, u: TurnUsage, answer: str) -> None:
        with self._db.session() as s:
            row = s.get(Message, message_id)
            if row is None:
                return
            row.answer = answer
            row.status = status
            row.error = finished.error if finished.status == "failed" else None
            row.message_tokens, row.answer_tokens = u.prompt_tokens, u.completion_tokens
            row.provider_response_latency = u.latency

    async def stop(self, app_id: str, user: str | None, task_id: str) -> None:
        """Stop a live turn of this app's end user; anything else is a silent no-op, as in Dify."""
        live = self._runs.live_by_task(task_id)
        if live is None or live.app_id != app_id or not user:
            return
        end_user = self._end_users.find(app_id, user)
        if end_user is not None and live.end_user_id == end_user.id:
            live.stop()
