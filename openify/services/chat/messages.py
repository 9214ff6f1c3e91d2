"""Messages of conversations: create as a turn starts, complete as it ends, page backwards, feedback."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import select

from openify.errors import NotFound
from openify.providers.base import Usage
from openify.services.chat.conversations import ConversationService, Page
from openify.services.instances import INSTANCE_ID
from openify.storage.db import Database
from openify.storage.tables import Conversation, Message, MessageFeedback
from openify.storage.tables.base import new_id, utcnow


class MessageNotFound(NotFound):
    """The message does not exist or belongs to another end user or app."""

    message = "Message Not Exists."


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn, as prompt history needs it."""

    query: str
    answer: str


def usage_dict(usage: Usage) -> dict[str, Any]:
    """Dify's `usage` with Decimal prices (the wire layer renders them as strings or numbers)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "prompt_unit_price": usage.prompt_unit_price,
        "prompt_price_unit": usage.price_unit,
        "prompt_price": usage.prompt_price,
        "completion_tokens": usage.completion_tokens,
        "completion_unit_price": usage.completion_unit_price,
        "completion_price_unit": usage.price_unit,
        "completion_price": usage.completion_price,
        "total_tokens": usage.total_tokens,
        "total_price": usage.total_price,
        "currency": usage.currency,
        "latency": round(usage.latency, 3),
        "time_to_first_token": usage.time_to_first_token,
        "time_to_generate": usage.time_to_generate,
    }


def _stored_usage(usage: Usage) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in usage_dict(usage).items()}


class MessageService:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def new(
        conversation: Conversation,
        query: str,
        inputs: Mapping[str, Any],
        message_files: Sequence[Mapping[str, Any]] = (),
        parent_message_id: str | None = None,
        workflow_run_id: str | None = None,
    ) -> Message:
        """An unsaved message of `conversation` in status `running`."""
        now = utcnow()
        return Message(
            id=new_id(),
            app_id=conversation.app_id,
            conversation_id=conversation.id,
            end_user_id=conversation.end_user_id,
            parent_message_id=parent_message_id,
            mode=conversation.mode,
            inputs=dict(inputs),
            query=query,
            answer="",
            message_tokens=0,
            answer_tokens=0,
            total_price="0",
            currency="USD",
            usage={},
            provider_response_latency=0.0,
            status="running",
            error=None,
            retriever_resources=[],
            agent_thoughts=[],
            message_files=list(message_files),
            suggested_questions=None,
            workflow_run_id=workflow_run_id,
            created_at=now,
            updated_at=now,
            instance_id=INSTANCE_ID,
        )

    def create(self, conversation: Conversation, query: str, inputs: Mapping[str, Any], **fields: Any) -> Message:
        """Store a new running message and count the turn on its conversation."""
        row = self.new(conversation, query, inputs, **fields)
        with self._db.session() as s:
            s.add(row)
            self.bump(s, conversation.id, row.created_at)
        return row

    @staticmethod
    def bump(s: sa.orm.Session, conversation_id: str, at: Any) -> None:
        s.execute(
            sa.update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(updated_at=at, dialogue_count=Conversation.dialogue_count + 1)
        )

    def complete(
        self,
        message_id: str,
        *,
        answer: str,
        status: str = "normal",
        error: str | None = None,
        usage: Usage | None = None,
        retriever_resources: Sequence[Mapping[str, Any]] | None = None,
        agent_thoughts: Sequence[Mapping[str, Any]] | None = None,
        message_files: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Store how a turn ended: the answer as far as it got, its cost, status and error."""
        values: dict[str, Any] = {"answer": answer, "status": status, "error": error, "updated_at": utcnow()}
        if usage is not None:
            values.update(
                message_tokens=usage.prompt_tokens,
                answer_tokens=usage.completion_tokens,
                total_price=str(usage.total_price),
                currency=usage.currency,
                usage=_stored_usage(usage),
                provider_response_latency=usage.latency,
            )
        if retriever_resources is not None:
            values["retriever_resources"] = list(retriever_resources)
        if agent_thoughts is not None:
            values["agent_thoughts"] = list(agent_thoughts)
        if message_files is not None:
            values["message_files"] = list(message_files)
        table = cast(sa.Table, Message.__table__)
        with self._db.engine.begin() as c:  # one Core statement: no Session, no unit of work
            c.execute(sa.update(table).where(table.c.id == message_id).values(**values))

    def recover(self, alive: Collection[str] = ()) -> int:
        """Messages left `running` by a process not among `alive` (server instance ids; no owner counts as
        left) end as errors, their partial answers kept."""
        table = cast(sa.Table, Message.__table__)
        owner = table.c.instance_id
        with self._db.engine.begin() as c:
            result = c.execute(
                sa.update(table)
                .where(table.c.status == "running", sa.or_(owner.is_(None), owner.not_in(alive)))
                .values(status="error", error="The server stopped before the answer was finished.")
            )
        return int(result.rowcount or 0)

    def save_answer(self, message_id: str, answer: str) -> None:
        """Store the answer so far of a running message."""
        with self._db.session() as s:
            s.execute(sa.update(Message).where(Message.id == message_id).values(answer=answer))

    @staticmethod
    def history_in(s: sa.orm.Session, conversation_id: str, limit: int = 100) -> list[Turn]:
        """Earlier answered turns, oldest first (at most `limit`)."""
        rows = s.execute(
            select(Message.query, Message.answer)
            .where(Message.conversation_id == conversation_id, Message.answer != "")
            .order_by(Message.created_at.desc())
            .limit(limit)
        ).all()
        return [Turn(q, a) for q, a in reversed(rows)]

    def get(self, app_id: str, end_user_id: str, message_id: str) -> Message:
        with self._db.session() as s:
            row = s.get(Message, message_id)
            if row is None or row.app_id != app_id or row.end_user_id != end_user_id:
                raise MessageNotFound()
            return row

    def page(self, app_id: str, end_user_id: str, conversation_id: str, first_id: str | None, limit: int) -> Page:
        """A page of messages ending before `first_id`, newest page first, chronological within the page."""
        with self._db.session() as s:
            ConversationService.get_in(s, app_id, end_user_id, conversation_id)
            q = select(Message).where(Message.conversation_id == conversation_id)
            if first_id:
                first = s.get(Message, first_id)
                if first is None or first.conversation_id != conversation_id:
                    raise MessageNotFound("First Message Not Exists.")
                q = q.where(
                    sa.or_(
                        Message.created_at < first.created_at,
                        sa.and_(Message.created_at == first.created_at, Message.id < first.id),
                    )
                )
            rows = list(s.scalars(q.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)).all())
            page = rows[:limit]
            ratings = (
                dict(
                    s.execute(
                        select(MessageFeedback.message_id, MessageFeedback.rating).where(
                            MessageFeedback.message_id.in_([m.id for m in page]), MessageFeedback.from_source == "user"
                        )
                    ).all()
                )
                if page
                else {}
            )
        page.reverse()
        return Page([(m, ratings.get(m.id)) for m in page], len(rows) > limit)

    # --- feedback --------------------------------------------------------------------------------
    def feedback(self, app_id: str, end_user_id: str, message_id: str, rating: str | None, content: str | None) -> None:
        """Like or dislike a message; `None` removes the end user's rating, a new one replaces it."""
        with self._db.session() as s:
            msg = s.get(Message, message_id)
            if msg is None or msg.app_id != app_id or msg.end_user_id != end_user_id:
                raise MessageNotFound()
            row = s.scalar(
                select(MessageFeedback).where(
                    MessageFeedback.message_id == message_id, MessageFeedback.from_source == "user"
                )
            )
            if rating is None:
                if row is None:
                    raise NotFound("rating cannot be None when feedback not exists")
                s.delete(row)
                return
            if row is None:
                s.add(
                    MessageFeedback(
                        id=new_id(),
                        app_id=app_id,
                        conversation_id=msg.conversation_id,
                        message_id=message_id,
                        rating=rating,
                        content=content,
                        from_source="user",
                        from_end_user_id=end_user_id,
                    )
                )
            else:
                row.rating, row.content, row.updated_at = rating, content, utcnow()

    def app_feedbacks(self, app_id: str, page: int, limit: int) -> list[MessageFeedback]:
        with self._db.session() as s:
            return list(
                s.scalars(
                    select(MessageFeedback)
                    .where(MessageFeedback.app_id == app_id)
                    .order_by(MessageFeedback.created_at.desc(), MessageFeedback.id.desc())
                    .offset((page - 1) * limit)
                    .limit(limit)
                ).all()
            )

    def set_suggested(self, message_id: str, questions: list[str]) -> None:
        with self._db.session() as s:
            s.execute(sa.update(Message).where(Message.id == message_id).values(suggested_questions=questions))
