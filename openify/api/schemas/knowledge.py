"""Request bodies of the Knowledge API and the wire shapes of datasets, documents, chunks and records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, StrictBool

from openify.api.schemas.bodies import JsonBody
from openify.api.timefmt import unix
from openify.services.knowledge.datasets import DatasetView
from openify.services.knowledge.documents import DocumentView, display_status
from openify.services.knowledge.retrieval import Hit
from openify.services.knowledge.segments import SegmentView
from openify.services.knowledge.tags import TagView
from openify.storage.tables import ChildChunk, DatasetMetadataField, DatasetTag, Segment

AUTHOR = "api"  # one workspace owner: Dify's dataset keys act as the owner


# --- requests --------------------------------------------------------------------------------------
class DatasetCreate(JsonBody):
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(default="", max_length=400)
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] = "only_me"
    provider: Literal["vendor", "external"] = "vendor"
    embedding_model: str | None = None
    embedding_model_provider: str | None = None
    retrieval_model: dict[str, Any] | None = None
    external_knowledge_api_id: str | None = None
    external_knowledge_id: str | None = None
    summary_index_setting: dict[str, Any] | None = None


class DatasetUpdate(JsonBody):
    name: str | None = Field(default=None, min_length=1, max_length=40)
    description: str | None = Field(default=None, max_length=400)
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None
    retrieval_model: dict[str, Any] | None = None
    summary_index_setting: dict[str, Any] | None = None
    partial_member_list: list[dict[str, Any]] | None = None
    external_retrieval_model: dict[str, Any] | None = None


class _DocumentOptions(JsonBody):
    indexing_technique: Literal["high_quality", "economy"] | None = None
    doc_form: Literal["text_model", "hierarchical_model", "qa_model"] | None = None
    doc_language: str | None = Field(default=None, max_length=64)
    process_rule: dict[str, Any] | None = None
    retrieval_model: dict[str, Any] | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None


class CreateByText(_DocumentOptions):
    name: str = Field(min_length=1, max_length=255)
    text: str = Field(min_length=1)
    original_document_id: str | None = None


class FileOptions(_DocumentOptions):
    """The `data` form field of create-by-file and update-by-file, a JSON string."""

    original_document_id: str | None = None
    name: str | None = Field(default=None, max_length=255)


class UpdateByText(_DocumentOptions):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    text: str | None = Field(default=None, min_length=1)


class DocumentIds(JsonBody):
    document_ids: list[str] = Field(min_length=1)


class DownloadZip(JsonBody):
    document_ids: list[str] = Field(min_length=1, max_length=100)


class SegmentItem(JsonBody):
    content: str = Field(min_length=1)
    answer: str | None = None
    keywords: list[str] | None = None
    attachment_ids: list[str] | None = None


class SegmentsCreate(JsonBody):
    segments: list[SegmentItem] = Field(min_length=1)


class SegmentChanges(JsonBody):
    content: str | None = Field(default=None, min_length=1)
    answer: str | None = None
    keywords: list[str] | None = None
    enabled: StrictBool | None = None
    regenerate_child_chunks: StrictBool = False
    attachment_ids: list[str] | None = None
    summary: str | None = None


class SegmentUpdate(JsonBody):
    segment: SegmentChanges


class ChildChunkBody(JsonBody):
    content: str = Field(min_length=1)


class TagCreate(JsonBody):
    name: str = Field(min_length=1, max_length=50)


class TagUpdate(JsonBody):
    tag_id: str
    name: str = Field(min_length=1, max_length=50)


class TagDelete(JsonBody):
    tag_id: str


class TagBinding(JsonBody):
    tag_ids: list[str] = Field(min_length=1)
    target_id: str


class TagUnbinding(JsonBody):
    tag_ids: list[str] | None = None
    tag_id: str | None = None
    target_id: str


class MetadataCreate(JsonBody):
    type: Literal["string", "number", "time"]
    name: str = Field(min_length=1, max_length=255)


class MetadataRename(JsonBody):
    name: str = Field(min_length=1, max_length=255)


class MetadataValue(JsonBody):
    id: str
    name: str
    value: str | int | float | None = None


class DocumentMetadataOperation(JsonBody):
    document_id: str
    metadata_list: list[MetadataValue]
    partial_update: StrictBool = False


class DocumentMetadataBody(JsonBody):
    operation_data: list[DocumentMetadataOperation] = Field(min_length=1)


class RetrieveBody(JsonBody):
    query: str = Field(min_length=1, max_length=250)
    retrieval_model: dict[str, Any] | None = None
    external_retrieval_model: dict[str, Any] | None = None
    attachment_ids: list[str] | None = None


# --- responses -------------------------------------------------------------------------------------
def page_body(data: list[Any], page: int, limit: int, total: int) -> dict[str, Any]:
    # Dify: has_more is len(data) == limit, true on an exactly full last page too.
    return {"data": data, "has_more": len(data) == limit, "limit": limit, "total": total, "page": page}


def retrieval_model_dict(stored: dict[str, Any] | None, indexing_technique: str | None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "search_method": "semantic_search",
        "reranking_enable": False,
        "reranking_mode": None,
        "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
        "weights": None,
        "top_k": 2,
        "score_threshold_enabled": False,
        "score_threshold": None,
    }
    base.update(stored or {})
    if indexing_technique == "economy":
        base["search_method"] = "keyword_search"
    return base


def tag_ref(tag: DatasetTag) -> dict[str, Any]:
    return {"id": tag.id, "name": tag.name, "type": tag.type}


def metadata_field(f: DatasetMetadataField) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "type": f.type}


def dataset_body(v: DatasetView, with_members: bool = False) -> dict[str, Any]:
    d = v.row
    body: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "provider": d.provider,
        "permission": d.permission,
        "data_source_type": "upload_file" if v.document_count else None,
        "indexing_technique": d.indexing_technique,
        "app_count": v.app_count,
        "document_count": v.document_count,
        "word_count": v.word_count,
        "created_by": AUTHOR,
        "author_name": AUTHOR,
        "created_at": unix(d.created_at),
        "updated_by": AUTHOR,
        "updated_at": unix(d.updated_at),
        "embedding_model": d.embedding_model,
        "embedding_model_provider": d.embedding_model_provider,
        "embedding_available": d.indexing_technique != "high_quality" or d.embedding_model is not None,
        "retrieval_model_dict": retrieval_model_dict(d.retrieval_model, d.indexing_technique),
        "summary_index_setting": d.summary_index_setting,
        "tags": [tag_ref(t) for t in v.tags],
        "doc_form": d.doc_form,
        "external_knowledge_info": None,
        "external_retrieval_model": None,
        "doc_metadata": [metadata_field(f) for f in v.metadata_fields],
        "built_in_field_enabled": d.built_in_field_enabled,
        "pipeline_id": None,
        "runtime_mode": "general",
        "chunk_structure": d.doc_form,
        "icon_info": None,
        "is_published": False,
        "total_documents": v.document_count,
        "total_available_documents": v.available_document_count,
        "enable_api": d.enable_api,
        "is_multimodal": False,
        "maintainer": AUTHOR,
    }
    if with_members or d.permission == "partial_members":
        body["partial_member_list"] = []
    return body


def document_body(v: DocumentView, detail: bool = False) -> dict[str, Any]:
    d = v.row
    upload = {
        "id": d.id,
        "name": d.name,
        "size": d.file_size,
        "extension": d.file_extension,
        "mime_type": d.mime_type,
        "created_by": AUTHOR,
        "created_at": unix(d.created_at),
    }
    body: dict[str, Any] = {
        "id": d.id,
        "position": d.position,
        "data_source_type": "upload_file",
        "data_source_info": {"upload_file_id": d.id},
        "data_source_detail_dict": {"upload_file": upload},
        "dataset_process_rule_id": d.dataset_process_rule_id,
        "name": d.name,
        "created_from": "api",
        "created_by": AUTHOR,
        "created_at": unix(d.created_at),
        "tokens": d.tokens,
        "indexing_status": d.indexing_status,
        "error": d.error,
        "enabled": d.enabled,
        "disabled_at": unix(d.disabled_at),
        "disabled_by": AUTHOR if d.disabled_at else None,
        "archived": d.archived,
        "display_status": display_status(d),
        "word_count": d.word_count,
        "hit_count": d.hit_count,
        "doc_form": d.doc_form,
        "doc_metadata": [{"id": i, "name": n, "type": t, "value": val} for i, n, t, val in v.metadata],
        "summary_index_status": None,
        "need_summary": False,
    }
    if detail:
        rule = {"mode": v.process_rule.mode, "rules": v.process_rule.rules} if v.process_rule else None
        latency = None
        if d.completed_at and d.processing_started_at:
            latency = (d.completed_at - d.processing_started_at).total_seconds()
        body.update(
            {
                "dataset_process_rule": rule,
                "document_process_rule": rule,
                "doc_language": d.doc_language,
                "doc_type": None,
                "completed_at": unix(d.completed_at),
                "updated_at": unix(d.updated_at),
                "indexing_latency": latency,
                "segment_count": v.total_segments,
                "average_segment_length": d.word_count // v.total_segments if v.total_segments else 0,
                "archived_reason": None,
                "archived_by": None,
                "archived_at": unix(d.archived_at),
            }
        )
    return body


def indexing_status_body(v: DocumentView) -> dict[str, Any]:
    d = v.row
    return {
        "id": d.id,
        "indexing_status": d.indexing_status,
        "processing_started_at": unix(d.processing_started_at),
        "parsing_completed_at": unix(d.parsing_completed_at),
        "cleaning_completed_at": unix(d.cleaning_completed_at),
        "splitting_completed_at": unix(d.splitting_completed_at),
        "completed_at": unix(d.completed_at),
        "paused_at": unix(d.paused_at),
        "error": d.error,
        "stopped_at": unix(d.stopped_at),
        "completed_segments": v.completed_segments,
        "total_segments": v.total_segments,
    }


def child_chunk_body(c: ChildChunk) -> dict[str, Any]:
    return {
        "id": c.id,
        "segment_id": c.segment_id,
        "content": c.content,
        "position": c.position,
        "word_count": c.word_count,
        "type": c.type,
        "created_at": unix(c.created_at),
        "updated_at": unix(c.updated_at),
    }


def _segment_fields(s: Segment) -> dict[str, Any]:
    return {
        "id": s.id,
        "position": s.position,
        "document_id": s.document_id,
        "content": s.content,
        "sign_content": s.content,
        "answer": s.answer,
        "word_count": s.word_count,
        "tokens": s.tokens,
        "keywords": list(s.keywords or []),
        "index_node_id": s.index_node_id,
        "index_node_hash": s.index_node_hash,
        "hit_count": s.hit_count,
        "enabled": s.enabled,
        "disabled_at": unix(s.disabled_at),
        "disabled_by": AUTHOR if s.disabled_at else None,
        "status": s.status,
        "created_by": AUTHOR,
        "created_at": unix(s.created_at),
        "updated_at": unix(s.updated_at),
        "updated_by": AUTHOR,
        "indexing_at": unix(s.indexing_at),
        "completed_at": unix(s.completed_at),
        "error": s.error,
        "stopped_at": None,
    }


def segment_body(v: SegmentView) -> dict[str, Any]:
    return {
        **_segment_fields(v.row),
        "child_chunks": [child_chunk_body(c) for c in v.children],
        "attachments": [],
        "summary": None,
    }


def record_body(h: Hit) -> dict[str, Any]:
    d = h.document
    segment = {
        **_segment_fields(h.segment),
        "document": {
            "id": d.id,
            "data_source_type": "upload_file",
            "name": d.name,
            "doc_type": None,
            "doc_metadata": dict(h.doc_metadata) or None,
        },
    }
    return {
        "segment": segment,
        "child_chunks": [
            {"id": c.id, "content": c.content, "position": c.position, "score": score} for c, score in h.children
        ],
        "score": h.score,
        "tsne_position": None,
        "files": [],
        "summary": None,
    }


def tag_body(v: TagView) -> dict[str, Any]:
    return {"id": v.row.id, "name": v.row.name, "type": v.row.type, "binding_count": str(v.binding_count)}


def tags_of_dataset(tags: Sequence[DatasetTag]) -> dict[str, Any]:
    return {"data": [{"id": t.id, "name": t.name} for t in tags], "total": len(tags)}
