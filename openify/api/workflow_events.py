"""Typed workflow events -> Dify's workflow and chatflow event payloads (framing is api/sse.py's).

Field sets are Dify's `task_entities.py` stream responses; `data.id` of iteration and loop events is the
node id, as Dify sends it. Workflow apps stream End output as `text_chunk`; chatflows stream Answer output as
`message` events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from openify.api import sse
from openify.api.sse import error_payload
from openify.engine.events import (
    AgentLog,
    IterationCompleted,
    IterationNext,
    IterationStarted,
    LoopCompleted,
    LoopNext,
    LoopStarted,
    NodeFinished,
    NodeRetry,
    NodeStarted,
    TextChunk,
    WorkflowEvent,
    WorkflowFinished,
    WorkflowStarted,
)
from openify.errors import InvalidParam
from openify.services.workflows.chatflows import AnnotatedTurn, ChatflowTurn, TurnUsage


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """What every frame of one run carries besides its event data."""

    task_id: str
    workflow_run_id: str
    workflow_id: str
    end_user_id: str
    session_id: str
    # chatflow only
    conversation_id: str | None = None
    message_id: str | None = None
    message_created_at: int = 0

    @property
    def chat(self) -> bool:
        return self.message_id is not None

    def top(self, event: str) -> dict[str, Any]:
        if self.chat and event in ("message", "message_end"):
            return {
                "event": event,
                "conversation_id": self.conversation_id,
                "message_id": self.message_id,
                "created_at": self.message_created_at,
                "task_id": self.task_id,
            }
        if self.chat:
            return {
                "event": event,
                "conversation_id": self.conversation_id,
                "message_id": self.message_id,
                "created_at": self.message_created_at,
                "task_id": self.task_id,
                "workflow_run_id": self.workflow_run_id,
            }
        return {"event": event, "workflow_run_id": self.workflow_run_id, "task_id": self.task_id}


def finished_data(ev: WorkflowFinished, keys: StreamKeys) -> dict[str, Any]:
    return {
        "id": ev.workflow_run_id,
        "workflow_id": keys.workflow_id,
        "status": ev.status,
        "outputs": dict(ev.outputs),
        "error": ev.error,
        "elapsed_time": ev.elapsed_time,
        "total_tokens": ev.total_tokens,
        "total_steps": ev.total_steps,
        "created_by": {"id": keys.end_user_id, "user": keys.session_id},
        "created_at": ev.created_at,
        "finished_at": ev.finished_at,
        "exceptions_count": ev.exceptions_count,
        "files": [dict(f) for f in ev.files],
    }


def blocking_data(ev: WorkflowFinished, keys: StreamKeys) -> dict[str, Any]:
    """The blocking body's `data`: Dify leaves out created_by, exceptions_count and files there."""
    data = finished_data(ev, keys)
    for key in ("created_by", "exceptions_count", "files"):
        del data[key]
    return data


# Events whose `data` is the event itself, member for member, in Dify's order (engine/events.py): a stream
# encodes them straight from the Struct. They are nearly every frame of a run (an iteration item is
# iteration_next and its nodes' two frames each).
_DATA_IS_EVENT: dict[type[WorkflowEvent], str] = {
    NodeStarted: "node_started",
    NodeFinished: "node_finished",
    NodeRetry: "node_retry",
    IterationNext: "iteration_next",
    LoopNext: "loop_next",
    AgentLog: "agent_log",
}


def payload(ev: WorkflowEvent, keys: StreamKeys) -> dict[str, Any] | None:
    """One event's payload, or None for events this stream does not send."""
    match ev:
        case WorkflowStarted():
            data: dict[str, Any] = {
                "id": ev.workflow_run_id,
                "workflow_id": keys.workflow_id,
                "inputs": dict(ev.inputs),
                "created_at": ev.created_at,
                "reason": "initial",
            }
            return {**keys.top("workflow_started"), "data": data}
        case NodeStarted() | NodeFinished() | NodeRetry() | IterationNext() | LoopNext() | AgentLog():
            return {**keys.top(_DATA_IS_EVENT[type(ev)]), "data": msgspec.structs.asdict(ev)}
        case TextChunk():
            if keys.chat:
                return {
                    **keys.top("message"),
                    "id": keys.message_id,
                    "answer": ev.text,
                    "from_variable_selector": list(ev.from_variable_selector),
                }
            text = {"text": ev.text, "from_variable_selector": list(ev.from_variable_selector)}
            return {**keys.top("text_chunk"), "data": text}
        case IterationStarted() | LoopStarted():
            kind = "iteration" if isinstance(ev, IterationStarted) else "loop"
            data = {
                "id": ev.id,
                "node_id": ev.node_id,
                "node_type": ev.node_type,
                "title": ev.title,
                "created_at": ev.created_at,
                "extras": dict(ev.extras),
                "metadata": dict(ev.metadata),
                "inputs": dict(ev.inputs),
                "inputs_truncated": False,
            }
            return {**keys.top(f"{kind}_started"), "data": data}
        case IterationCompleted() | LoopCompleted():
            kind = "iteration" if isinstance(ev, IterationCompleted) else "loop"
            data = {
                "id": ev.id,
                "node_id": ev.node_id,
                "node_type": ev.node_type,
                "title": ev.title,
                "outputs": dict(ev.outputs),
                "outputs_truncated": False,
                "created_at": ev.created_at,
                "extras": dict(ev.extras),
                "inputs": dict(ev.inputs),
                "inputs_truncated": False,
                "status": ev.status,
                "error": ev.error,
                "elapsed_time": ev.elapsed_time,
                "total_tokens": ev.total_tokens,
                "execution_metadata": dict(ev.execution_metadata),
                "finished_at": ev.finished_at,
                "steps": ev.steps,
            }
            return {**keys.top(f"{kind}_completed"), "data": data}
        case WorkflowFinished():
            return {**keys.top("workflow_finished"), "data": finished_data(ev, keys)}
    return None


class EventFrames:
    """One stream's encoder: a batch of events -> their SSE frames, in one bytes.

    The frames of `_DATA_IS_EVENT` share a head encoded once per stream and event name, and their `data` is
    the event itself, a msgspec Struct encoded in C: building a payload dict per event and encoding it with
    orjson cost a trivial node's run about twice as much, and iteration_next so built was 40% of what
    streaming added to an iteration of trivial items (bench/workflow.py). Floats may be written in another
    notation than orjson's, with the same value; anything msgspec refuses (a bool dict key) goes the
    dict-and-orjson way of every other event."""

    def __init__(self, keys: StreamKeys) -> None:
        self.keys = keys
        self._heads: dict[type[WorkflowEvent], bytes] = {}  # made on first use, not per stream up front
        self._json = msgspec.json.Encoder(enc_hook=sse.as_json_object)

    def encode(self, events: Sequence[WorkflowEvent]) -> bytes:
        # One buffer the encoder writes into: a bytes per piece and a join at the end cost a third more.
        out = bytearray()
        encode_into = self._json.encode_into
        heads = self._heads
        for ev in events:
            head = heads.get(type(ev))  # one lookup per frame: this loop runs for every event of every stream
            if head is None:
                head = self._head(type(ev))
            if head:
                mark = len(out)
                try:
                    out += head
                    encode_into(ev, out, -1)
                    out += b"}\n\n"
                    continue
                except (TypeError, msgspec.EncodeError):
                    del out[mark:]
            p = payload(ev, self.keys)
            if p is not None:
                out += sse.encode(p)
        return bytes(out)

    def _head(self, cls: type[WorkflowEvent]) -> bytes:
        """The frame head of a `_DATA_IS_EVENT` event, b"" for the others; kept for the stream's next frames."""
        name = _DATA_IS_EVENT.get(cls)
        head = self._heads[cls] = sse.frame_head(self.keys.top(name)) if name else b""
        return head


# --- chatflows ------------------------------------------------------------------------------------------
def chatflow_keys(turn: ChatflowTurn) -> StreamKeys:
    live = turn.live
    return StreamKeys(
        task_id=live.task_id,
        workflow_run_id=live.run_id,
        workflow_id=live.workflow_id,
        end_user_id=live.end_user_id,
        session_id=live.session_id,
        conversation_id=turn.conversation_id,
        message_id=turn.message_id,
        message_created_at=turn.created_at,
    )


def _usage(u: TurnUsage, sse: bool) -> dict[str, Any]:
    # Openify prices no tokens here yet; Dify sends price fields as strings in SSE and numbers in blocking bodies.
    zero: Any = "0" if sse else 0
    return {
        "prompt_tokens": u.prompt_tokens,
        "prompt_unit_price": zero,
        "prompt_price_unit": zero,
        "prompt_price": zero,
        "completion_tokens": u.completion_tokens,
        "completion_unit_price": zero,
        "completion_price_unit": zero,
        "completion_price": zero,
        "total_tokens": u.total_tokens,
        "total_price": zero,
        "currency": "USD",
        "latency": round(u.latency, 3),
        "time_to_first_token": None,
        "time_to_generate": None,
    }


def _metadata(u: TurnUsage, sse: bool, annotation_reply: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"annotation_reply": annotation_reply, "retriever_resources": [], "usage": _usage(u, sse)}


_NO_USAGE = TurnUsage(0, 0, 0, 0.0)


def _annotation(turn: AnnotatedTurn) -> dict[str, Any] | None:
    # Dify names the annotation's author account, "Dify user" when there is none; Openify has no accounts.
    if turn.annotation_id is None:
        return None  # input moderation's preset answered
    return {"id": turn.annotation_id, "account": {"id": None, "name": "Dify user"}}


async def annotated_payloads(turn: AnnotatedTurn) -> AsyncIterator[dict[str, Any]]:
    """A chatflow turn an annotation answered: Dify streams the answer as one `message` and then `message_end`,
    with no workflow events (advanced_chat/app_runner.py: _complete_with_stream_output)."""
    head = {
        "conversation_id": turn.conversation_id,
        "message_id": turn.message_id,
        "created_at": turn.created_at,
        "task_id": turn.task_id,
        "id": turn.message_id,
    }
    yield {"event": "message", **head, "answer": turn.answer, "from_variable_selector": None}
    yield {"event": "message_end", **head, "metadata": _metadata(_NO_USAGE, True, _annotation(turn)), "files": []}


def annotated_blocking_body(turn: AnnotatedTurn) -> dict[str, Any]:
    return {
        "event": "message",
        "task_id": turn.task_id,
        "id": turn.message_id,
        "message_id": turn.message_id,
        "conversation_id": turn.conversation_id,
        "mode": "advanced-chat",
        "answer": turn.answer,
        "metadata": _metadata(_NO_USAGE, False, _annotation(turn)),
        "created_at": turn.created_at,
    }


async def pre_run_error(message: str) -> AsyncIterator[dict[str, Any]]:
    """Dify checks inputs inside its worker, after the stream has started: the one frame it then sends has no
    code and status 500 (workflow_execute_task.py: _publish_error_event)."""
    yield {"event": "error", "message": message, "status": 500}


# While events come faster than this, a stream writes at most once per this long; an event after a quiet spell
# (an LLM token, a slow node finishing) goes at once. A write per frame of a fast workflow cost more than
# the run itself (bench/workflow.py).
STREAM_COALESCE_S = 0.005


def _run_failed(ev: WorkflowFinished) -> InvalidParam:
    return InvalidParam(f"Run failed: {ev.error}")


async def chatflow_payloads(
    turn: ChatflowTurn, usage: Callable[[WorkflowFinished], TurnUsage], replay: bool = True
) -> AsyncIterator[dict[str, Any] | bytes]:
    """A chatflow turn's stream: workflow events with Answer text as `message`; then `message_end` and
    `workflow_finished` (success), `workflow_finished` and `error` (failure), `workflow_finished` and
    `message_end` (stopped), in Dify's orders. Events before the end leave as encoded frames."""
    keys = chatflow_keys(turn)
    frames = EventFrames(keys)
    async for batch in turn.live.batches(replay, coalesce_s=STREAM_COALESCE_S):
        ev = batch[-1]
        if type(ev) is not WorkflowFinished:
            chunk = frames.encode(batch)
            if chunk:
                yield chunk
            continue
        chunk = frames.encode(batch[:-1])  # WorkflowFinished is always the last event published
        if chunk:
            yield chunk
        assert isinstance(ev, WorkflowFinished)  # noqa: S101 - narrowing for mypy
        end = {
            **keys.top("message_end"),
            "id": turn.message_id,
            "metadata": _metadata(usage(ev), True),
            "files": [dict(f) for f in ev.files],
        }
        finished = payload(ev, keys)
        if ev.status == "failed":
            yield finished  # type: ignore[misc]  # a WorkflowFinished always has a payload
            err = error_payload(_run_failed(ev), conversation_id=turn.conversation_id, message_id=turn.message_id)
            yield err
        elif ev.status == "stopped":
            yield finished  # type: ignore[misc]
            yield end
        else:
            if turn.live.answer_replaced is not None:
                # Dify's chatflow output moderation replaces the streamed answer before message_end.
                replace = {**keys.top("message"), "event": "message_replace", "answer": turn.live.answer_replaced}
                yield {**replace, "reason": "output_moderation"}
            yield end
            yield finished  # type: ignore[misc]


async def chatflow_blocking_body(turn: ChatflowTurn, usage: Callable[[WorkflowFinished], TurnUsage]) -> dict[str, Any]:
    """Dify's blocking chat body; a failed run is 400 invalid_param "Run failed: ..."."""
    ev = await turn.live.wait()
    if ev.status == "failed":
        raise _run_failed(ev)
    return {
        "event": "message",
        "task_id": turn.live.task_id,
        "id": turn.message_id,
        "message_id": turn.message_id,
        "conversation_id": turn.conversation_id,
        "mode": "advanced-chat",
        "answer": turn.live.answer_replaced if turn.live.answer_replaced is not None else ev.answer,
        "metadata": _metadata(usage(ev), False),
        "created_at": turn.created_at,
    }
