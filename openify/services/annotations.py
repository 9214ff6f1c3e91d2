"""Annotations and annotation reply (Dify's `AppAnnotationService` and its enable/disable jobs).

An annotation is a curated question and answer of an app. With annotation reply on, a chat query whose
embedding is close enough to an annotation's question (cosine similarity at or above the app's
`score_threshold`) is answered with that annotation, without the model.

Vectors are kept beside each annotation in the database, not in an index: an app has hundreds or a few thousand
annotations, one matrix product over them takes well under a millisecond, and every server process sharing the
database sees the same vectors without an index to keep in step.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from openify.errors import InvalidParam, NotFound
from openify.jobs.base import JobContext, JobRunner
from openify.providers.base import EmbeddingModel, ModelResolver
from openify.storage.db import Database
from openify.storage.tables import Annotation, AnnotationSetting, Job
from openify.storage.tables.base import new_id

log = logging.getLogger("openify.annotations")

REPLY_JOB = "annotation_reply"
ACTIONS = ("enable", "disable")
MAX_PAGE = 100  # Dify caps `limit` here
_EMBED_BATCH = 64
# Job rows -> Dify's job_status words.
_JOB_STATUS = {"queued": "waiting", "running": "processing", "done": "completed", "failed": "error"}
# How long a process trusts what it last read of an app's setting: a chat turn with reply off then costs no
# database read. Another process's enable or disable is seen within this long.
SETTING_TTL_S = 2.0
_ERROR_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*: ")  # the runner stores "Type: message"


class AnnotationNotFound(NotFound):
    message = "Annotation not found"


@dataclass(frozen=True, slots=True)
class Reply:
    """An annotation that answers a query."""

    annotation_id: str
    answer: str
    score: float


def _vector(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype=np.float32).tobytes()


def _model_key(provider: str, model: str) -> str:
    return f"{provider}/{model}"


class AnnotationService:
    def __init__(self, db: Database, models: ModelResolver, jobs: JobRunner) -> None:
        self._db, self._models, self._jobs = db, models, jobs
        self._settings: dict[str, tuple[AnnotationSetting | None, float]] = {}
        jobs.register(REPLY_JOB, self._run_job)

    # --- annotations --------------------------------------------------------------------------------------------
    def create(self, app_id: str, question: str, answer: str) -> Annotation:
        row = Annotation(id=new_id(), app_id=app_id, question=question, answer=answer, hit_count=0)
        self._embed_if_on(app_id, [row])
        with self._db.session() as s:
            s.add(row)
            s.flush()
            s.refresh(row)
            s.expunge(row)
        return row

    def page(self, app_id: str, page: int, limit: int, keyword: str) -> tuple[list[Annotation], int]:
        """Newest first; `keyword` matches question or answer, case-insensitively (Dify's ILIKE)."""
        cond = [Annotation.app_id == app_id]
        if keyword:
            pattern = f"%{_escape_like(keyword)}%"
            cond.append(
                or_(Annotation.question.ilike(pattern, escape="\\"), Annotation.answer.ilike(pattern, escape="\\"))
            )
        with self._db.session() as s:
            total = s.scalar(select(func.count()).select_from(Annotation).where(*cond)) or 0
            rows = list(
                s.scalars(
                    select(Annotation)
                    .where(*cond)
                    .order_by(Annotation.created_at.desc(), Annotation.id.desc())
                    .offset((page - 1) * limit)
                    .limit(limit)
                )
            )
            s.expunge_all()
        return rows, int(total)

    def update(self, app_id: str, annotation_id: str, question: str, answer: str) -> Annotation:
        row = self.get(app_id, annotation_id)
        row.question, row.answer = question, answer
        row.embedding = row.embedding_model = None
        self._embed_if_on(app_id, [row])  # before the write: a failing model leaves the annotation as it was
        with self._db.session() as s:
            s.merge(row)
        return self.get(app_id, annotation_id)

    def get(self, app_id: str, annotation_id: str) -> Annotation:
        with self._db.session() as s:
            row = _mine(s, app_id, annotation_id)
            s.expunge(row)
        return row

    def delete(self, app_id: str, annotation_id: str) -> None:
        with self._db.session() as s:
            s.delete(_mine(s, app_id, annotation_id))

    # --- annotation reply: settings and their jobs ----------------------------------------------------------------
    def setting(self, app_id: str) -> AnnotationSetting | None:
        with self._db.session() as s:
            row = s.get(AnnotationSetting, app_id)
            if row is not None:
                s.expunge(row)
        self._settings[app_id] = (row, time.monotonic())
        return row

    def surely_off(self, app_id: str) -> bool:
        """Whether reply is off for `app_id` by what this process read lately; no I/O (the chat hot path)."""
        known = self._settings.get(app_id)
        if known is None or time.monotonic() - known[1] > SETTING_TTL_S:
            return False
        return known[0] is None or not known[0].enabled

    def configure(self, app_id: str, action: str, provider: str, model: str, score_threshold: float) -> tuple[str, str]:
        """Queue the job that turns reply on (embedding every annotation) or off: (job id, Dify's job_status).
        While one for this app and action is queued or running, Dify answers with that one, `processing`."""
        if action not in ACTIONS:
            raise InvalidParam("Unsupported annotation reply action")
        with self._db.session() as s:
            pending = s.scalars(select(Job).where(Job.kind == REPLY_JOB, Job.status.in_(("queued", "running"))))
            for job in pending:
                if job.payload.get("app_id") == app_id and job.payload.get("action") == action:
                    return job.id, "processing"
        payload = {
            "app_id": app_id,
            "action": action,
            "provider": provider,
            "model": model,
            "score_threshold": score_threshold,
        }
        return self._jobs.enqueue(REPLY_JOB, payload), "waiting"

    def job_status(self, app_id: str, action: str, job_id: str) -> dict[str, str]:
        with self._db.session() as s:
            job = s.get(Job, job_id)
            mine = job is not None and job.kind == REPLY_JOB and job.payload.get("app_id") == app_id
            if job is None or not mine or job.payload.get("action") != action:
                raise InvalidParam("The job does not exist.")
            status, error = _JOB_STATUS.get(job.status, "waiting"), job.error or ""
        return {"job_id": job_id, "job_status": status, "error_msg": _ERROR_PREFIX.sub("", error) if error else ""}

    def _run_job(self, ctx: JobContext, payload: Mapping[str, Any]) -> None:
        app_id = str(payload["app_id"])
        if payload["action"] == "disable":
            with self._db.session() as s:
                s.execute(update(AnnotationSetting).where(AnnotationSetting.app_id == app_id).values(enabled=False))
                s.execute(
                    update(Annotation).where(Annotation.app_id == app_id).values(embedding=None, embedding_model=None)
                )
                ctx.finish(s)
            self._settings.pop(app_id, None)
            return
        provider, model = str(payload["provider"]), str(payload["model"])
        embedder = self._models.embedding(provider, model)  # an unknown model fails the job with its message
        key = _model_key(provider, model)
        self._embed_missing(ctx, app_id, embedder, key)
        with self._db.session() as s:
            row = s.get(AnnotationSetting, app_id) or AnnotationSetting(app_id=app_id)
            row.enabled = True
            row.score_threshold = float(payload["score_threshold"])
            row.embedding_provider_name, row.embedding_model_name = provider, model
            s.merge(row)
        self._settings.pop(app_id, None)
        # Annotations written while the job ran, before reply was on, were stored without a vector: embed them
        # now. Those written from here on are embedded as they are written.
        self._embed_missing(ctx, app_id, embedder, key)
        with self._db.session() as s:
            ctx.finish(s)

    def _embed_missing(self, ctx: JobContext, app_id: str, embedder: EmbeddingModel, key: str) -> None:
        with self._db.session() as s:
            todo = list(
                s.execute(
                    select(Annotation.id, Annotation.question).where(
                        Annotation.app_id == app_id,
                        or_(Annotation.embedding_model.is_(None), Annotation.embedding_model != key),
                    )
                )
            )
        for start in range(0, len(todo), _EMBED_BATCH):
            ctx.check()
            part = todo[start : start + _EMBED_BATCH]
            vectors = embedder.embed([q for _, q in part])
            with self._db.session() as s:
                for (annotation_id, _), vec in zip(part, vectors, strict=True):
                    s.execute(
                        update(Annotation)
                        .where(Annotation.id == annotation_id)
                        .values(embedding=_vector(vec), embedding_model=key)
                    )

    # --- annotation reply: matching a query --------------------------------------------------------------------
    async def reply_for(self, app_id: str, query: str) -> Reply | None:
        """`match` off the event loop, for a chat turn. It never raises: as in Dify (AnnotationReplyFeature), a
        failing match (a provider gone) is logged and the app answers as it would without annotations."""
        if not query or self.surely_off(app_id):
            return None
        try:
            return await asyncio.to_thread(self.match, app_id, query)
        except Exception:
            log.warning("annotation reply of app %s failed; the app answers without it", app_id, exc_info=True)
            return None

    def match(self, app_id: str, query: str) -> Reply | None:
        """The annotation that answers `query`, counted as a hit; None when reply is off or nothing is close."""
        setting = self.setting(app_id)
        if setting is None or not setting.enabled or not query.strip():
            return None
        key = _model_key(setting.embedding_provider_name, setting.embedding_model_name)
        with self._db.session() as s:
            rows = list(
                s.execute(
                    select(Annotation.id, Annotation.embedding).where(
                        Annotation.app_id == app_id, Annotation.embedding_model == key
                    )
                )
            )
        if not rows:
            return None
        embedder = self._embedder(setting)
        matrix = np.frombuffer(b"".join(r.embedding for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ np.asarray(embedder.embed_query(query), dtype=np.float32)
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < setting.score_threshold:
            return None
        annotation_id = rows[best].id
        with self._db.session() as s:  # counted in the database, so concurrent hits all count
            s.execute(
                update(Annotation).where(Annotation.id == annotation_id).values(hit_count=Annotation.hit_count + 1)
            )
            answer = s.scalar(select(Annotation.answer).where(Annotation.id == annotation_id))
        if answer is None:  # deleted meanwhile
            return None
        return Reply(annotation_id, answer, score)

    def _embedder(self, setting: AnnotationSetting) -> EmbeddingModel:
        return self._models.embedding(setting.embedding_provider_name, setting.embedding_model_name)

    def _embed_if_on(self, app_id: str, rows: Sequence[Annotation]) -> None:
        """With reply on, annotations are embedded as they are written (Dify queues a job per annotation)."""
        setting = self.setting(app_id)
        if setting is None or not setting.enabled:
            return
        vectors = self._embedder(setting).embed([r.question for r in rows])
        key = _model_key(setting.embedding_provider_name, setting.embedding_model_name)
        for row, vec in zip(rows, vectors, strict=True):
            row.embedding, row.embedding_model = _vector(vec), key


def _mine(s: Session, app_id: str, annotation_id: str) -> Annotation:
    """The annotation, if it is this app's; another app's is as absent as a missing one."""
    row = s.get(Annotation, annotation_id)
    if row is None or row.app_id != app_id:
        raise AnnotationNotFound()
    return row


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
