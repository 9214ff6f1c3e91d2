"""Chunks (segments) and child chunks of a document: create, list, read, update, delete.

Changes reach the dataset's indexes in the same call: a new or edited chunk matches at once, a
deleted or disabled one stops matching at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openify.errors import InvalidParam, NotFound
from openify.knowledge.chunks import ChildChunk as ChildValue
from openify.knowledge.chunks import Chunk, content_hash
from openify.knowledge.process_rule import ProcessRule
from openify.knowledge.splitters.recursive import split_on_separator
from openify.services.knowledge.datasets import get_dataset
from openify.services.knowledge.documents import get_document
from openify.services.knowledge.indexes import IndexManager, Node
from openify.storage.db import Database
from openify.storage.tables import ChildChunk, Dataset, DatasetProcessRule, Document, Segment
from openify.storage.tables.base import utcnow

SEGMENT_STATUSES = ("waiting", "indexing", "completed", "error")


@dataclass(frozen=True, slots=True)
class SegmentView:
    row: Segment
    children: Sequence[ChildChunk] = ()


def _keywords(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise InvalidParam("keywords must be a list of strings", params="keywords")
    return value


class SegmentService:
    def __init__(self, db: Database, indexes: IndexManager, dataset_row: Callable[[str], Dataset]) -> None:
        self._db, self._indexes, self._dataset_row = db, indexes, dataset_row

    def _open_document(self, s: Session, dataset_id: str, document_id: str, writable: bool = False) -> Document:
        get_dataset(s, dataset_id)
        doc = get_document(s, dataset_id, document_id)
        if writable and (doc.indexing_status != "completed" or not doc.enabled):
            raise NotFound("Document is not completed or is disabled.")
        return doc

    def _segment(self, s: Session, document_id: str, segment_id: str) -> Segment:
        seg = s.get(Segment, segment_id)
        if seg is None or seg.document_id != document_id:
            raise NotFound("Segment not found.")
        return seg

    # --- segments -------------------------------------------------------------------------------
    def create(
        self, dataset_id: str, document_id: str, items: Sequence[Mapping[str, Any]]
    ) -> tuple[list[SegmentView], str]:
        if not items:
            raise InvalidParam("segments is required", params="segments")
        now = utcnow()
        nodes: list[Node] = []
        ids: list[str] = []
        with self._db.session() as s:
            doc = self._open_document(s, dataset_id, document_id, writable=True)
            position = s.scalar(select(func.max(Segment.position)).where(Segment.document_id == document_id)) or 0
            rule = self._child_rule(s, doc)
            for item in items:
                content = item.get("content")
                if not isinstance(content, str) or not content.strip():
                    raise InvalidParam("content is required", params="content")
                answer = item.get("answer")
                if doc.doc_form == "qa_model" and (not isinstance(answer, str) or not answer.strip()):
                    raise InvalidParam("answer is required for qa_model documents", params="answer")
                position += 1
                chunk = Chunk.of(content, position, answer if doc.doc_form == "qa_model" else None)
                seg_id = str(uuid.uuid4())
                s.add(
                    Segment(
                        id=seg_id,
                        dataset_id=dataset_id,
                        document_id=document_id,
                        position=position,
                        content=content,
                        answer=chunk.answer,
                        word_count=chunk.word_count,
                        tokens=chunk.tokens,
                        keywords=_keywords(item.get("keywords")),
                        index_node_id=seg_id,
                        index_node_hash=chunk.hash,
                        hit_count=0,
                        enabled=True,
                        status="completed",
                        indexing_at=now,
                        completed_at=now,
                    )
                )
                ids.append(seg_id)
                if doc.doc_form == "hierarchical_model":
                    s.flush()
                    nodes += self._make_children(s, doc, seg_id, content, rule)
                else:
                    nodes.append(Node(seg_id, chunk.index_text))
                doc.word_count += chunk.word_count
                doc.tokens += chunk.tokens
            doc_form = doc.doc_form
            searchable = not doc.archived
        if searchable:
            self._indexes.add(self._dataset_row(dataset_id), nodes)
        return [self.get(dataset_id, document_id, i)[0] for i in ids], doc_form

    def list_page(
        self, dataset_id: str, document_id: str, page: int, limit: int, statuses: Sequence[str], keyword: str | None
    ) -> tuple[list[SegmentView], int, str]:
        for st in statuses:
            if st not in SEGMENT_STATUSES:
                raise InvalidParam(f"status must be one of {', '.join(SEGMENT_STATUSES)}", params="status")
        with self._db.session() as s:
            doc = self._open_document(s, dataset_id, document_id)
            q = select(Segment).where(Segment.document_id == document_id)
            if statuses:
                q = q.where(Segment.status.in_(list(statuses)))
            if keyword:
                q = q.where(Segment.content.icontains(keyword, autoescape=True))
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(Segment.position).offset((page - 1) * limit).limit(limit)).all()
            return [self._view(s, r) for r in rows], total, doc.doc_form

    def get(self, dataset_id: str, document_id: str, segment_id: str) -> tuple[SegmentView, str]:
        with self._db.session() as s:
            doc = self._open_document(s, dataset_id, document_id)
            return self._view(s, self._segment(s, document_id, segment_id)), doc.doc_form

    def update(
        self, dataset_id: str, document_id: str, segment_id: str, changes: Mapping[str, Any]
    ) -> tuple[SegmentView, str]:
        remove: list[str] = []
        add: list[Node] = []
        with self._db.session() as s:
            doc = self._open_document(s, dataset_id, document_id, writable=True)
            seg = self._segment(s, document_id, segment_id)
            was_on = seg.enabled
            enabled = changes.get("enabled")
            if enabled is not None and not isinstance(enabled, bool):
                raise InvalidParam("enabled must be a boolean", params="enabled")
            content = changes.get("content")
            if content is not None and (not isinstance(content, str) or not content.strip()):
                raise InvalidParam("content must be a non-empty string", params="content")
            answer = changes.get("answer")
            if answer is not None and not isinstance(answer, str):
                raise InvalidParam("answer must be a string", params="answer")
            if "keywords" in changes:
                seg.keywords = _keywords(changes["keywords"])
            text_changed = (content is not None and content != seg.content) or (
                doc.doc_form == "qa_model" and answer is not None and answer != seg.answer
            )
            if text_changed:
                new_content = content if content is not None else seg.content
                new_answer = (answer if answer is not None else seg.answer) if doc.doc_form == "qa_model" else None
                chunk = Chunk.of(new_content, seg.position, new_answer)
                doc.word_count += chunk.word_count - seg.word_count
                doc.tokens += chunk.tokens - seg.tokens
                seg.content, seg.answer, seg.word_count, seg.tokens = (
                    new_content,
                    new_answer,
                    chunk.word_count,
                    chunk.tokens,
                )
                seg.index_node_hash = chunk.hash
            if enabled is not None:
                seg.enabled = enabled
                seg.disabled_at = None if enabled else utcnow()
            seg.updated_at = utcnow()
            hierarchical = doc.doc_form == "hierarchical_model"
            children = list(s.scalars(select(ChildChunk).where(ChildChunk.segment_id == seg.id)))
            regenerate = hierarchical and (text_changed and bool(changes.get("regenerate_child_chunks")))
            if regenerate:
                remove += [c.index_node_id for c in children]
                for c in children:
                    s.delete(c)
                s.flush()
                new_nodes = self._make_children(s, doc, seg.id, seg.content, self._child_rule(s, doc))
            else:
                new_nodes = (
                    [Node(c.index_node_id, c.content) for c in children]
                    if hierarchical
                    else [Node(seg.index_node_id, seg.content if not seg.answer else f"{seg.content}\n{seg.answer}")]
                )
            live = seg.enabled and not doc.archived
            if was_on or regenerate:
                remove += [n.node_id for n in new_nodes] if not live else []
            if live and (text_changed or regenerate or not was_on):
                add = new_nodes
        dataset = self._dataset_row(dataset_id)
        if remove:
            self._indexes.remove(dataset, remove, persist_now=not add)
        if add:
            self._indexes.add(dataset, add)
        return self.get(dataset_id, document_id, segment_id)

    def delete(self, dataset_id: str, document_id: str, segment_id: str) -> None:
        with self._db.session() as s:
            doc = self._open_document(s, dataset_id, document_id)
            seg = self._segment(s, document_id, segment_id)
            node_ids = [
                seg.index_node_id,
                *s.scalars(select(ChildChunk.index_node_id).where(ChildChunk.segment_id == seg.id)),
            ]
            doc.word_count = max(0, doc.word_count - seg.word_count)
            doc.tokens = max(0, doc.tokens - seg.tokens)
            s.delete(seg)
        self._indexes.remove(self._dataset_row(dataset_id), node_ids)

    # --- child chunks ---------------------------------------------------------------------------
    def _child_rule(self, s: Session, doc: Document) -> ProcessRule | None:
        if doc.doc_form != "hierarchical_model":
            return None
        row = s.get(DatasetProcessRule, doc.dataset_process_rule_id) if doc.dataset_process_rule_id else None
        raw = {"mode": row.mode, "rules": row.rules} if row is not None else None
        return ProcessRule.from_dify(raw, "hierarchical_model")

    def _make_children(
        self, s: Session, doc: Document, segment_id: str, content: str, rule: ProcessRule | None
    ) -> list[Node]:
        sub = rule.subchunk_segmentation if rule is not None else None
        pieces = [content]
        if sub is not None:
            pieces = [
                p.strip()
                for p in split_on_separator(content, sub.separator, sub.max_tokens, sub.chunk_overlap)
                if p.strip()
            ] or [content]
        nodes = []
        for i, piece in enumerate(pieces, start=1):
            value = ChildValue.of(piece, i)
            child_id = str(uuid.uuid4())
            s.add(
                ChildChunk(
                    id=child_id,
                    dataset_id=doc.dataset_id,
                    document_id=doc.id,
                    segment_id=segment_id,
                    position=i,
                    content=piece,
                    word_count=value.word_count,
                    index_node_id=child_id,
                    index_node_hash=value.hash,
                    type="automatic",
                )
            )
            nodes.append(Node(child_id, piece))
        return nodes

    def _open_segment(
        self, s: Session, dataset_id: str, document_id: str, segment_id: str, writable: bool = False
    ) -> tuple[Document, Segment]:
        doc = self._open_document(s, dataset_id, document_id, writable)
        return doc, self._segment(s, document_id, segment_id)

    def _child(self, s: Session, segment_id: str, child_id: str) -> ChildChunk:
        child = s.get(ChildChunk, child_id)
        if child is None or child.segment_id != segment_id:
            raise NotFound("Child chunk not found.")
        return child

    def create_child(self, dataset_id: str, document_id: str, segment_id: str, content: Any) -> ChildChunk:
        if not isinstance(content, str) or not content.strip():
            raise InvalidParam("content is required", params="content")
        with self._db.session() as s:
            doc, seg = self._open_segment(s, dataset_id, document_id, segment_id, writable=True)
            if doc.doc_form != "hierarchical_model":
                raise InvalidParam("Child chunks exist only in hierarchical_model documents.")
            position = (s.scalar(select(func.max(ChildChunk.position)).where(ChildChunk.segment_id == seg.id)) or 0) + 1
            child_id = str(uuid.uuid4())
            child = ChildChunk(
                id=child_id,
                dataset_id=dataset_id,
                document_id=document_id,
                segment_id=seg.id,
                position=position,
                content=content,
                word_count=len(content),
                index_node_id=child_id,
                index_node_hash=content_hash(content),
                type="customized",
            )
            s.add(child)
            live = seg.enabled and not doc.archived
        if live:
            self._indexes.add(self._dataset_row(dataset_id), [Node(child_id, content)])
        return child

    def list_children(
        self, dataset_id: str, document_id: str, segment_id: str, page: int, limit: int, keyword: str | None
    ) -> tuple[list[ChildChunk], int]:
        with self._db.session() as s:
            self._open_segment(s, dataset_id, document_id, segment_id)
            q = select(ChildChunk).where(ChildChunk.segment_id == segment_id)
            if keyword:
                q = q.where(ChildChunk.content.icontains(keyword, autoescape=True))
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(ChildChunk.position).offset((page - 1) * limit).limit(limit)).all()
            return list(rows), total

    def update_child(
        self, dataset_id: str, document_id: str, segment_id: str, child_id: str, content: Any
    ) -> ChildChunk:
        if not isinstance(content, str) or not content.strip():
            raise InvalidParam("content is required", params="content")
        with self._db.session() as s:
            doc, seg = self._open_segment(s, dataset_id, document_id, segment_id, writable=True)
            child = self._child(s, seg.id, child_id)
            child.content, child.word_count = content, len(content)
            child.index_node_hash, child.type, child.updated_at = content_hash(content), "customized", utcnow()
            live = seg.enabled and not doc.archived
            node = Node(child.index_node_id, content)
        if live:
            self._indexes.add(self._dataset_row(dataset_id), [node])
        return child

    def delete_child(self, dataset_id: str, document_id: str, segment_id: str, child_id: str) -> None:
        with self._db.session() as s:
            _, seg = self._open_segment(s, dataset_id, document_id, segment_id)
            child = self._child(s, seg.id, child_id)
            node_id = child.index_node_id
            s.delete(child)
        self._indexes.remove(self._dataset_row(dataset_id), [node_id])

    def _view(self, s: Session, seg: Segment) -> SegmentView:
        children = s.scalars(
            select(ChildChunk).where(ChildChunk.segment_id == seg.id).order_by(ChildChunk.position)
        ).all()
        return SegmentView(seg, tuple(children))
