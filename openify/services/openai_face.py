"""Any app as an OpenAI chat model: one call of `/openai/v1/chat/completions` becomes one turn of the app's own
service (chat, agent-chat and completion through `ChatService`, chatflow through `ChatflowService`, workflow
through `WorkflowRunService`), and its typed events become one stream of `FaceDelta`s ending with `FaceEnd`.
No generation logic lives here: only the mapping of messages to a turn and of each service's events back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openify.engine.events import TextChunk, WorkflowFinished
from openify.errors import CompletionRequestError, InvalidParam, OpenifyError
from openify.services.app_parameters import form_fields
from openify.services.chat import TurnRequest
from openify.services.chat.events import AgentMessageDelta, GenerationError, MessageDelta, MessageEnd
from openify.services.chat.messages import Turn
from openify.services.workflows.chatflows import AnnotatedTurn
from openify.storage.tables import App

if TYPE_CHECKING:
    from openify.services.container import Services

FACE_MODES = ("chat", "agent-chat", "completion", "advanced-chat", "workflow")
_TEXT_INPUTS = ("text-input", "paragraph")


@dataclass(frozen=True, slots=True)
class ChatText:
    """One OpenAI message reduced to what an app takes: its role and its text."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class FaceDelta:
    text: str


@dataclass(frozen=True, slots=True)
class FaceEnd:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class FaceError:
    error: OpenifyError


FaceEvent = FaceDelta | FaceEnd | FaceError


@dataclass
class FaceTurn:
    """A started turn: the conversation it belongs to (none for workflows) and its events."""

    conversation_id: str | None
    events: AsyncIterator[FaceEvent]
    answer: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # a workflow's outputs, once it finished


def split_messages(messages: Sequence[ChatText]) -> tuple[str, list[Turn]]:
    """The last user message is the query; earlier user/assistant pairs are the history. System messages are
    left out: the app's own prompt is the system prompt."""
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last is None or not messages[last].text.strip():
        raise InvalidParam("messages must end with a user message that has text", params="messages")
    history: list[Turn] = []
    pending: str | None = None
    for m in messages[:last]:
        if m.role == "user":
            pending = m.text if pending is None else f"{pending}\n{m.text}"
        elif m.role == "assistant" and pending is not None:
            history.append(Turn(pending, m.text))
            pending = None
    return messages[last].text, history


def first_text_input(app: App) -> str | None:
    """The variable of the app's first text input (text-input or paragraph), as the face fills it."""
    return next((f.get("variable") for kind, f in form_fields(app) if kind in _TEXT_INPUTS), None)


def _outputs_text(outputs: Mapping[str, Any]) -> str:
    """A workflow's answer: its only string output as it is, anything else as JSON."""
    values = list(outputs.values())
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return json.dumps(outputs, ensure_ascii=False, default=str)


class OpenAIFace:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def start(
        self,
        app: App,
        user: str,
        messages: Sequence[ChatText],
        conversation_id: str | None,
        inputs: Mapping[str, Any],
    ) -> FaceTurn:
        query, history = split_messages(messages)
        return await self.run(app, user, query, inputs, conversation_id, history)

    async def run(
        self,
        app: App,
        user: str,
        query: str,
        inputs: Mapping[str, Any],
        conversation_id: str | None = None,
        history: Sequence[Turn] = (),
    ) -> FaceTurn:
        """One turn of any app: `query` is the chat query, or the first text input of a completion or workflow
        app when `inputs` leaves it empty."""
        mode = app.mode
        if mode not in FACE_MODES:
            raise InvalidParam(f"apps of mode {mode!r} cannot answer as a chat model")
        if mode in ("completion", "workflow"):
            var = first_text_input(app)
            filled = dict(inputs)
            if var is not None and query:
                filled.setdefault(var, query)
            inputs = filled
        if mode == "workflow":
            return await self._workflow(app, user, inputs)
        if mode == "advanced-chat":
            return await self._chatflow(app, user, query, conversation_id, inputs)
        req = TurnRequest(
            user=user,
            inputs=inputs,
            query=query if mode != "completion" else "",
            conversation_id=conversation_id if mode != "completion" else None,
            auto_generate_name=False,
            streaming=True,
            history=history,
        )
        gen = await self._s.chat.start(app, req)

        async def events() -> AsyncIterator[FaceEvent]:
            async for ev in gen.follow():
                if isinstance(ev, MessageDelta | AgentMessageDelta):
                    yield FaceDelta(ev.answer)
                elif isinstance(ev, MessageEnd):
                    u = ev.usage
                    yield FaceEnd(u.prompt_tokens, u.completion_tokens, u.total_tokens)
                elif isinstance(ev, GenerationError):
                    yield FaceError(ev.error)
                # MessageReplace (output moderation) is ignored here: the route's blocking body takes the
                # generation's final answer, and a stream cannot take back what it sent.

        conv = gen.conversation_id if mode != "completion" else None
        return FaceTurn(conv, events(), gen.answer)

    async def _chatflow(
        self, app: App, user: str, query: str, conversation_id: str | None, inputs: Mapping[str, Any]
    ) -> FaceTurn:
        req = TurnRequest(user=user, inputs=inputs, query=query, conversation_id=conversation_id, streaming=True)
        chatflows = self._s.chatflows
        turn = await chatflows.start(app, req)
        if isinstance(turn, AnnotatedTurn):
            answer = turn.answer

            async def annotated() -> AsyncIterator[FaceEvent]:
                yield FaceDelta(answer)
                yield FaceEnd(0, 0, 0)

            return FaceTurn(turn.conversation_id, annotated())
        live = turn.live

        async def events() -> AsyncIterator[FaceEvent]:
            async for batch in live.batches():
                for ev in batch:
                    if type(ev) is TextChunk:
                        yield FaceDelta(ev.text)
                    elif type(ev) is WorkflowFinished:
                        if ev.status == "failed":
                            yield FaceError(CompletionRequestError(ev.error or "the run failed"))
                            return
                        u = chatflows.usage(live, ev)
                        yield FaceEnd(u.prompt_tokens, u.completion_tokens, u.total_tokens)

        return FaceTurn(turn.conversation_id, events())

    async def _workflow(self, app: App, user: str, inputs: Mapping[str, Any]) -> FaceTurn:
        workflows = self._s.workflows
        end_user = await workflows.end_user(app.id, user)
        live = await workflows.start(app, end_user, dict(inputs), files=[])
        outputs: dict[str, Any] = {}

        async def events() -> AsyncIterator[FaceEvent]:
            finished = await live.wait()
            if finished.status != "succeeded":
                yield FaceError(CompletionRequestError(finished.error or f"the run ended {finished.status}"))
                return
            outputs.update(finished.outputs)
            yield FaceDelta(_outputs_text(finished.outputs))
            u = self._s.chatflows.usage(live, finished)
            yield FaceEnd(u.prompt_tokens, u.completion_tokens, u.total_tokens)

        return FaceTurn(None, events(), outputs=outputs)
