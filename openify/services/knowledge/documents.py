"""Documents: create and update by text or file (indexing runs as a job), list, read, delete, status."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from openify.errors import (
    ArchivedDocumentImmutable,
    DocumentIndexing,
    FileTooLarge,
    InvalidAction,
    InvalidParam,
    NotFound,
    UnsupportedFileType,
)
from openify.jobs.base import JobRunner
from openify.knowledge.extractors import UnsupportedDocumentType, detect_extension, mime_type_of
from openify.knowledge.process_rule import DOC_FORMS, ProcessRule
from openify.registry import Registries
from openify.services.knowledge.datasets import EMBEDDED_PROVIDER, INDEXING_TECHNIQUES, get_dataset
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import Dataset, DatasetProcessRule, Document, Segment
from openify.storage.tables.base import utcnow

INDEX_JOB = "knowledge.index_document"
IN_PROGRESS = ("parsing", "cleaning", "splitting", "indexing")
DISPLAY_STATUSES = ("queuing", "indexing", "paused", "error", "available", "disabled", "archived")
ACTIONS = ("enable", "disable", "archive", "un_archive")


@dataclass(frozen=True, slots=True)
class DocumentView:
    row: Document
    completed_segments: int = 0
    total_segments: int = 0
    process_rule: DatasetProcessRule | None = None
    metadata: Sequence[tuple[str, str, str, Any]] = ()  # (field id, name, type, value)


@dataclass(frozen=True, slots=True)
class DocumentOptions:
    """What create-by-text/-file and update-by-text/-file take besides the content."""

    indexing_technique: str | None = None
    doc_form: str | None = None
    doc_language: str | None = None
    process_rule: Mapping[str, Any] | None = None
    retrieval_model: Mapping[str, Any] | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None


def display_status(d: Document) -> str:
    """Dify's Document.display_status."""
    if d.indexing_status == "waiting":
        return "queuing"
    if d.indexing_status in IN_PROGRESS:
        return "indexing"
    if d.indexing_status == "paused":
        return "paused"
    if d.indexing_status == "error":
        return "error"
    if d.archived:
        return "archived"
    return "available" if d.enabled else "disabled"


def _status_filter(status: str) -> ColumnElement[bool]:
    done = Document.indexing_status == "completed"
    return {
        "queuing": Document.indexing_status == "waiting",
        "indexing": Document.indexing_status.in_(IN_PROGRESS),
        "paused": Document.indexing_status == "paused",
        "error": Document.indexing_status == "error",
        "available": and_(done, Document.archived.is_(False), Document.enabled.is_(True)),
        "disabled": and_(done, Document.archived.is_(False), Document.enabled.is_(False)),
        "archived": and_(done, Document.archived.is_(True)),
    }[status]


def get_document(s: Session, dataset_id: str, document_id: str) -> Document:
    doc = s.get(Document, document_id)
    if doc is None or doc.dataset_id != dataset_id:
        raise NotFound("Document not found.")
    return doc


class DocumentService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobRunner,
        registries: Registries,
        file_size_limit_mb: int,
        default_embedding_model: str,
        check_embedding: Callable[[str | None, str | None], None],
        index_document: Callable[[str], None],
        unindex_document: Callable[[str, Sequence[str]], None],
    ) -> None:
        self._db, self._blobs, self._jobs, self._r = db, blobs, jobs, registries
        self._limit_bytes = file_size_limit_mb * 1024 * 1024
        self._default_model, self._check_embedding = default_embedding_model, check_embedding
        self._index_document, self._unindex_document = index_document, unindex_document

    # --- create and update ---------------------------------------------------------------------
    def check_file(self, filename: str, size: int, mime_type: str | None) -> str:
        """The upload's extension; 415 when no extractor reads it, 413 when it is over the limit."""
        try:
            ext = detect_extension(filename, mime_type)
        except UnsupportedDocumentType:
            raise UnsupportedFileType() from None
        if ext not in self._r.extractors:
            raise UnsupportedFileType()
        if size > self._limit_bytes:
            raise FileTooLarge()
        return ext

    def create(
        self,
        dataset_id: str,
        name: str,
        data: bytes,
        ext: str,
        mime_type: str | None,
        options: DocumentOptions,
        source: str,
    ) -> tuple[DocumentView, str]:
        """Store a document (`source` is `text` or `upload_file`) and queue its indexing."""
        name = name.strip()
        if not name:
            raise InvalidParam("name is required", params="name")
        if len(name) > 255:
            raise InvalidParam("name must be at most 255 characters", params="name")
        document_id, batch = str(uuid.uuid4()), _new_batch()
        key = f"knowledge/{dataset_id}/{document_id}/{batch}.{ext}"
        with self._db.session() as s:
            dataset = get_dataset(s, dataset_id)
            doc_form, rule = self._prepare(s, dataset, options)
            self._blobs.put(key, data)  # before the row: a crash leaves an orphan file, never a row without one
            position = (s.scalar(select(func.max(Document.position)).where(Document.dataset_id == dataset_id)) or 0) + 1
            info = {"upload_file_id": document_id} if source == "upload_file" else {}
            doc = Document(
                id=document_id,
                dataset_id=dataset_id,
                position=position,
                batch=batch,
                name=name,
                data_source_type=source,
                data_source_info=info,
                blob_key=key,
                file_size=len(data),
                file_extension=ext,
                mime_type=mime_type or mime_type_of(ext),
                dataset_process_rule_id=rule.id,
                doc_form=doc_form,
                doc_language=options.doc_language or "English",
                indexing_status="waiting",
                enabled=True,
                archived=False,
                word_count=0,
                tokens=0,
                hit_count=0,
                doc_metadata={},
            )
            s.add(doc)
            self._jobs.enqueue(INDEX_JOB, {"document_id": document_id, "batch": batch}, session=s)
            s.flush()
            # The answer shows the document as created (`waiting`, as Dify answers): read after the commit, a
            # worker may already have moved it on.
            view = self._view(s, doc)
        return view, batch

    def update(
        self,
        dataset_id: str,
        document_id: str,
        name: str | None,
        data: bytes | None,
        ext: str | None,
        mime_type: str | None,
        options: DocumentOptions,
    ) -> tuple[DocumentView, str]:
        """Replace a document's name, content or rules; new content is indexed again under a new batch."""
        batch = _new_batch()
        with self._db.session() as s:
            dataset = get_dataset(s, dataset_id)
            doc = get_document(s, dataset_id, document_id)
            if doc.archived:
                raise ArchivedDocumentImmutable()
            if doc.indexing_status in IN_PROGRESS:
                raise DocumentIndexing()
            if name is not None:
                if not name.strip() or len(name) > 255:
                    raise InvalidParam("name must be 1 to 255 characters", params="name")
                doc.name = name.strip()
            if data is None and options.process_rule is None and options.doc_form is None:
                return self._view(s, doc), doc.batch
            options = DocumentOptions(
                None,
                options.doc_form or doc.doc_form,
                options.doc_language,
                options.process_rule,
                options.retrieval_model,
            )
            doc_form, rule = self._prepare(s, dataset, options, allow_new_form=True)
            replaced: str | None = None
            if data is not None and ext is not None:
                key = f"knowledge/{dataset_id}/{document_id}/{batch}.{ext}"
                self._blobs.put(key, data)
                replaced = doc.blob_key
                doc.blob_key, doc.file_size, doc.file_extension = key, len(data), ext
                doc.mime_type = mime_type or mime_type_of(ext)
            doc.doc_form, doc.dataset_process_rule_id, doc.batch = doc_form, rule.id, batch
            if options.doc_language:
                doc.doc_language = options.doc_language
            doc.indexing_status, doc.error, doc.completed_at = "waiting", None, None
            for stamp in (
                "processing_started_at",
                "parsing_completed_at",
                "cleaning_completed_at",
                "splitting_completed_at",
                "stopped_at",
            ):
                setattr(doc, stamp, None)
            doc.updated_at = utcnow()
            self._jobs.enqueue(INDEX_JOB, {"document_id": document_id, "batch": batch}, session=s)
            node_ids = _node_ids(s, [document_id])
            s.flush()
            view = self._view(s, doc)  # as updated (`waiting`), before a worker can move it on
        # The old chunks stop matching now; the new ones match when the job completes.
        self._unindex_document(dataset_id, node_ids)
        if replaced is not None:
            self._blobs.delete(replaced)
        return view, batch

    def _prepare(
        self, s: Session, dataset: Dataset, o: DocumentOptions, allow_new_form: bool = False
    ) -> tuple[str, DatasetProcessRule]:
        if o.indexing_technique is not None and o.indexing_technique not in INDEXING_TECHNIQUES:
            raise InvalidParam("indexing_technique must be high_quality or economy", params="indexing_technique")
        if dataset.indexing_technique is None:
            if o.indexing_technique is None:
                raise InvalidParam("indexing_technique is required.", params="indexing_technique")
            dataset.indexing_technique = o.indexing_technique
            if o.indexing_technique == "high_quality":
                dataset.embedding_model = o.embedding_model or dataset.embedding_model or self._default_model
                dataset.embedding_model_provider = (
                    o.embedding_model_provider or dataset.embedding_model_provider or EMBEDDED_PROVIDER
                )
                self._check_embedding(dataset.embedding_model_provider, dataset.embedding_model)
        doc_form = o.doc_form or dataset.doc_form or "text_model"
        if doc_form not in DOC_FORMS:
            raise InvalidParam(f"doc_form must be one of {', '.join(DOC_FORMS)}", params="doc_form")
        if dataset.doc_form is None:
            dataset.doc_form = doc_form
        elif doc_form != dataset.doc_form and not allow_new_form:
            raise InvalidParam(f"doc_form {doc_form} differs from the dataset's {dataset.doc_form}.", params="doc_form")
        if o.process_rule is not None and not isinstance(o.process_rule, Mapping):
            raise InvalidParam("process_rule must be an object", params="process_rule")
        ProcessRule.from_dify(o.process_rule, doc_form)  # validates: InvalidParam
        raw = dict(o.process_rule or {"mode": "automatic"})
        rule = DatasetProcessRule(
            id=str(uuid.uuid4()), dataset_id=dataset.id, mode=str(raw.get("mode", "automatic")), rules=raw.get("rules")
        )
        s.add(rule)
        if o.retrieval_model is not None:
            from openify.services.knowledge.datasets import validate_retrieval_model

            dataset.retrieval_model = validate_retrieval_model(o.retrieval_model, dataset.indexing_technique)
        return doc_form, rule

    # --- reads ----------------------------------------------------------------------------------
    def get(self, dataset_id: str, document_id: str) -> DocumentView:
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            return self._view(s, get_document(s, dataset_id, document_id))

    def list_page(
        self, dataset_id: str, page: int, limit: int, keyword: str | None, status: str | None
    ) -> tuple[list[DocumentView], int]:
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            q = select(Document).where(Document.dataset_id == dataset_id)
            if keyword:
                q = q.where(Document.name.icontains(keyword, autoescape=True))
            if status:
                if status not in DISPLAY_STATUSES:
                    raise InvalidParam(f"status must be one of {', '.join(DISPLAY_STATUSES)}", params="status")
                q = q.where(_status_filter(status))
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(
                q.order_by(Document.created_at.desc(), Document.position.desc()).offset((page - 1) * limit).limit(limit)
            ).all()
            return [self._view(s, d) for d in rows], total

    def by_batch(self, dataset_id: str, batch: str) -> list[DocumentView]:
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            rows = s.scalars(
                select(Document)
                .where(Document.dataset_id == dataset_id, Document.batch == batch)
                .order_by(Document.position)
            ).all()
            if not rows:
                raise NotFound("Documents not found.")
            return [self._view(s, d) for d in rows]

    def _view(self, s: Session, d: Document) -> DocumentView:
        counts = s.execute(
            select(func.count(), func.count().filter(Segment.status == "completed")).where(Segment.document_id == d.id)
        ).one()
        rule = s.get(DatasetProcessRule, d.dataset_process_rule_id) if d.dataset_process_rule_id else None
        from openify.storage.tables import DatasetMetadataField

        fields = s.scalars(select(DatasetMetadataField).where(DatasetMetadataField.dataset_id == d.dataset_id)).all()
        meta = [(f.id, f.name, f.type, d.doc_metadata[f.id]) for f in fields if f.id in (d.doc_metadata or {})]
        return DocumentView(d, int(counts[1]), int(counts[0]), rule, meta)

    def file(self, dataset_id: str, document_id: str) -> tuple[Document, bytes]:
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            doc = get_document(s, dataset_id, document_id)
        return doc, self._blobs.get(doc.blob_key)

    # --- delete and status ----------------------------------------------------------------------
    def delete(self, dataset_id: str, document_id: str) -> None:
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            doc = get_document(s, dataset_id, document_id)
            if doc.archived:
                raise ArchivedDocumentImmutable()
            # A document being indexed is deleted too, as Dify's DocumentService.delete_document does: its job
            # finds the row gone at its next step and stops (pipeline.py), removing what it had indexed.
            node_ids = _node_ids(s, [document_id])
            blob = doc.blob_key
            s.delete(doc)
        self._unindex_document(dataset_id, node_ids)
        self._blobs.delete(blob)

    def set_status(self, dataset_id: str, action: str, document_ids: Sequence[str]) -> None:
        if action not in ACTIONS:
            raise InvalidAction(f"Invalid action: {action}")
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            raise InvalidParam("document_ids is required", params="document_ids")
        now = utcnow()
        changed_on: list[str] = []
        changed_off: list[str] = []
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            docs = [get_document(s, dataset_id, i) for i in ids]
            for doc in docs:
                if action in ("enable", "disable", "archive") and doc.indexing_status in (*IN_PROGRESS, "waiting"):
                    raise InvalidAction(f"Document {doc.name} is still being indexed.")
            for doc in docs:
                before = _searchable(doc)
                if action == "enable":
                    doc.enabled, doc.disabled_at = True, None
                elif action == "disable":
                    doc.enabled, doc.disabled_at = False, now
                elif action == "archive":
                    doc.archived, doc.archived_at = True, now
                else:
                    doc.archived, doc.archived_at = False, None
                doc.updated_at = now
                after = _searchable(doc)
                if after and not before:
                    changed_on.append(doc.id)
                elif before and not after:
                    changed_off.append(doc.id)
            off_nodes = _node_ids(s, changed_off)
        if off_nodes:
            self._unindex_document(dataset_id, off_nodes)
        for doc_id in changed_on:
            self._index_document(doc_id)


def _searchable(d: Document) -> bool:
    return d.enabled and not d.archived and d.indexing_status == "completed"


def _node_ids(s: Session, document_ids: Sequence[str]) -> list[str]:
    from openify.storage.tables import ChildChunk

    if not document_ids:
        return []
    ids = list(s.scalars(select(Segment.index_node_id).where(Segment.document_id.in_(list(document_ids)))))
    ids += list(s.scalars(select(ChildChunk.index_node_id).where(ChildChunk.document_id.in_(list(document_ids)))))
    return ids


def _new_batch() -> str:
    return datetime.now().strftime("%Y%m%d%H%M%S") + str(secrets.randbelow(900000) + 100000)
