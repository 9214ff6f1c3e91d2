"""The indexing job of one document: parsing -> cleaning -> splitting -> indexing -> completed (or error).

Idempotent, so a job resumed after a kill simply runs again: the segments of an earlier attempt are
replaced, the index entries are keyed by segment (or child) ids, and the document is marked
completed in the same transaction that marks the job done, only while the job's claim is held.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import delete, select, update

from openify.errors import OpenifyError
from openify.jobs.base import JobContext, JobInterrupted, LeaseLost
from openify.knowledge.chunks import Chunk
from openify.knowledge.extractors import ExtractionError, extract
from openify.knowledge.process_rule import ProcessRule
from openify.knowledge.splitters import split_document
from openify.registry import Registries
from openify.security.document_limits import DocumentLimits
from openify.services.knowledge.indexes import DatasetGone, IndexManager, Node
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import ChildChunk, Dataset, DatasetProcessRule, Document, Segment
from openify.storage.tables.base import utcnow

log = logging.getLogger("openify.knowledge")
EMBED_BATCH = 64


class _Gone(Exception):
    """The document was deleted under the job (alone, or with its dataset): the job stops, as cancelled."""


class IndexingPipeline:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        registries: Registries,
        indexes: IndexManager,
        max_segment_tokens: int = 4000,
        on_stage: Callable[[str, str], None] | None = None,
        limits: DocumentLimits | None = None,
    ) -> None:
        self._db, self._blobs, self._r, self._indexes = db, blobs, registries, indexes
        self._limits = limits or DocumentLimits()
        self._max_tokens = max_segment_tokens
        self._on_stage = on_stage  # (document id, stage): a hook for tests and metrics

    def __call__(self, ctx: JobContext, payload: Mapping[str, Any]) -> None:
        document_id, batch = str(payload["document_id"]), str(payload["batch"])
        with self._db.session() as s:
            doc = s.get(Document, document_id)
            if doc is None or doc.batch != batch or doc.indexing_status in ("completed", "error"):
                ctx.finish(s)  # deleted, superseded by an update, or already settled
                return
            dataset = s.get(Dataset, doc.dataset_id)
            rule_row = s.get(DatasetProcessRule, doc.dataset_process_rule_id) if doc.dataset_process_rule_id else None
            assert dataset is not None  # noqa: S101 - documents cascade with their dataset
            s.expunge(dataset)
        raw_rule = {"mode": rule_row.mode, "rules": rule_row.rules} if rule_row is not None else None
        try:
            self._run(ctx, dataset, document_id, batch, raw_rule)
        except (JobInterrupted, LeaseLost):
            raise
        except (_Gone, DatasetGone):
            log.info("document %s or its dataset was deleted while indexing", document_id)
            with self._db.session() as s:
                ctx.finish(s)
        except Exception as e:
            if not self._exists(document_id):  # its file or rows vanished with it: a deletion, not a failure
                log.info("document %s was deleted while indexing", document_id)
                with self._db.session() as s:
                    ctx.finish(s)
                return
            message = e.detail if isinstance(e, OpenifyError) else f"{type(e).__name__}: {e}"
            if not isinstance(e, OpenifyError):
                log.exception("indexing of document %s failed", document_id)
            self._fail(ctx, dataset, document_id, message)

    def give_up(self, payload: Mapping[str, Any], message: str) -> None:
        """The job failed for good (e.g. killed again and again): the document shows the error."""
        with self._db.session() as s:
            s.execute(
                update(Document)
                .where(Document.id == str(payload["document_id"]), Document.batch == str(payload["batch"]))
                .values(indexing_status="error", error=f"Indexing failed: {message}", stopped_at=utcnow())
            )

    # --- stages ---------------------------------------------------------------------------------
    def _stage(self, ctx: JobContext, document_id: str, status: str, **stamps: Any) -> None:
        ctx.check()
        with self._db.session() as s:
            ctx.check(s)
            staged = s.execute(
                update(Document).where(Document.id == document_id).values(indexing_status=status, error=None, **stamps)
            )
            if staged.rowcount == 0:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                raise _Gone(document_id)  # deleted while indexing (Dify deletes it then too): stop here
        if self._on_stage is not None:
            self._on_stage(document_id, status)

    def _run(
        self, ctx: JobContext, dataset: Dataset, document_id: str, batch: str, raw_rule: Mapping[str, Any] | None
    ) -> None:
        with self._db.session() as s:
            doc = s.get(Document, document_id)
            assert doc is not None  # noqa: S101 - read above
            blob_key, name, doc_form, ext = doc.blob_key, doc.name, doc.doc_form, doc.file_extension
        self._stage(ctx, document_id, "parsing", processing_started_at=utcnow())
        data = self._blobs.get(blob_key)
        filename = name if name.lower().endswith(f".{ext}") else f"{name}.{ext}"
        extracted = extract(self._r.extractors, filename, data, limits=self._limits)  # past a cap: `error`
        self._stage(ctx, document_id, "cleaning", parsing_completed_at=utcnow())
        rule = ProcessRule.from_dify(raw_rule, doc_form, self._max_tokens)
        self._stage(ctx, document_id, "splitting", cleaning_completed_at=utcnow())
        chunks = split_document(self._r.splitters, extracted, rule, doc_form)  # cleans, then cuts
        if not chunks:
            raise ExtractionError(f"{name}: the document has no text to index")
        self._stage(ctx, document_id, "indexing", splitting_completed_at=utcnow())
        nodes = self._store_segments(ctx, dataset, document_id, chunks)
        for start in range(0, len(nodes), EMBED_BATCH):
            ctx.check()
            part = nodes[start : start + EMBED_BATCH]
            with self._db.session() as s:
                ctx.check(s)
                marked = s.execute(
                    update(Segment)
                    .where(Segment.id.in_({seg for seg, _ in part}))
                    .values(status="completed", completed_at=utcnow())
                )
                if marked.rowcount == 0:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                    raise _Gone(document_id)
            self._indexes.add(dataset, [n for _, n in part], persist_now=False)
            if not self._exists(document_id):
                # Deleted between marking and adding: its deletion may have unindexed before this add.
                self._indexes.remove(dataset, [n.node_id for _, n in part], persist_now=False)
                raise _Gone(document_id)
        with self._db.session() as s:
            s.execute(
                update(Segment)
                .where(Segment.document_id == document_id, Segment.status != "completed")
                .values(status="completed", completed_at=utcnow())
            )
            s.execute(
                update(Document)
                .where(Document.id == document_id, Document.batch == batch)
                .values(indexing_status="completed", completed_at=utcnow(), error=None)
            )
            ctx.finish(s)  # only while the claim is held: the document completes exactly once
        self._indexes.persist(dataset.id)
        if self._on_stage is not None:
            self._on_stage(document_id, "completed")

    def _exists(self, document_id: str) -> bool:
        with self._db.session() as s:
            return s.scalar(select(Document.id).where(Document.id == document_id)) is not None

    def _store_segments(
        self, ctx: JobContext, dataset: Dataset, document_id: str, chunks: list[Chunk]
    ) -> list[tuple[str, Node]]:
        """Replace the document's segments (an earlier attempt's, or the old content's) with `chunks`."""
        now = utcnow()
        nodes: list[tuple[str, Node]] = []
        with self._db.session() as s:
            ctx.check(s)
            # Locks the row on PostgreSQL, so a deletion waits for these segments and then takes them along.
            if s.scalar(select(Document.id).where(Document.id == document_id).with_for_update()) is None:
                raise _Gone(document_id)
            old = list(s.scalars(select(Segment.index_node_id).where(Segment.document_id == document_id)))
            old += list(s.scalars(select(ChildChunk.index_node_id).where(ChildChunk.document_id == document_id)))
            s.execute(delete(ChildChunk).where(ChildChunk.document_id == document_id))
            s.execute(delete(Segment).where(Segment.document_id == document_id))
            words = tokens = 0
            for chunk in chunks:
                seg_id = str(uuid.uuid4())
                s.add(
                    Segment(
                        id=seg_id,
                        dataset_id=dataset.id,
                        document_id=document_id,
                        position=chunk.position,
                        content=chunk.content,
                        answer=chunk.answer,
                        word_count=chunk.word_count,
                        tokens=chunk.tokens,
                        keywords=[],
                        index_node_id=seg_id,
                        index_node_hash=chunk.hash,
                        hit_count=0,
                        enabled=True,
                        status="indexing",
                        indexing_at=now,
                    )
                )
                if chunk.children:
                    s.flush()
                    for child in chunk.children:
                        child_id = str(uuid.uuid4())
                        s.add(
                            ChildChunk(
                                id=child_id,
                                dataset_id=dataset.id,
                                document_id=document_id,
                                segment_id=seg_id,
                                position=child.position,
                                content=child.content,
                                word_count=child.word_count,
                                index_node_id=child_id,
                                index_node_hash=child.hash,
                                type="automatic",
                            )
                        )
                        nodes.append((seg_id, Node(child_id, child.content)))
                else:
                    nodes.append((seg_id, Node(seg_id, chunk.index_text)))
                words += chunk.word_count
                tokens += chunk.tokens
            s.execute(update(Document).where(Document.id == document_id).values(word_count=words, tokens=tokens))
        self._indexes.remove(dataset, old, persist_now=False)
        return nodes

    def _fail(self, ctx: JobContext, dataset: Dataset, document_id: str, message: str) -> None:
        with self._db.session() as s:
            node_ids = list(s.scalars(select(Segment.index_node_id).where(Segment.document_id == document_id)))
            node_ids += list(s.scalars(select(ChildChunk.index_node_id).where(ChildChunk.document_id == document_id)))
            s.execute(update(Segment).where(Segment.document_id == document_id).values(status="error", error=message))
            s.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(indexing_status="error", error=message, stopped_at=utcnow())
            )
            ctx.finish(s)
        self._indexes.remove(dataset, node_ids)
        if self._on_stage is not None:
            self._on_stage(document_id, "error")
