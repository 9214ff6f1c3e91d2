"""Knowledge bases: create, list (paging, keyword, tags), read, update, delete."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openify.errors import DatasetInUse, DatasetNameDuplicate, DocumentIndexing, InvalidParam, NotFound
from openify.knowledge.retrieval import RetrievalSettings
from openify.storage.db import Database
from openify.storage.tables import App, Dataset, DatasetMetadataField, DatasetTag, DatasetTagBinding, Document
from openify.storage.tables.base import utcnow

INDEXING_TECHNIQUES = ("high_quality", "economy")
PERMISSIONS = ("only_me", "all_team_members", "partial_members")
EMBEDDED_PROVIDER = "openify"


@dataclass(frozen=True, slots=True)
class DatasetView:
    """A dataset with what its wire shape counts and lists."""

    row: Dataset
    document_count: int = 0
    available_document_count: int = 0
    word_count: int = 0
    app_count: int = 0
    tags: Sequence[DatasetTag] = ()
    metadata_fields: Sequence[DatasetMetadataField] = field(default_factory=tuple)


def get_dataset(s: Session, dataset_id: str) -> Dataset:
    row = s.get(Dataset, dataset_id)
    if row is None:
        raise NotFound("Dataset not found.")
    return row


def validate_retrieval_model(value: Any, indexing_technique: str | None) -> dict[str, Any] | None:
    """Check a RetrievalModel dict (InvalidParam when bad) and return it as stored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParam("retrieval_model must be an object")
    RetrievalSettings.from_dify(value, indexing_technique or "high_quality")
    return value


class DatasetService:
    def __init__(
        self,
        db: Database,
        default_embedding_model: str,
        check_embedding: Callable[[str | None, str | None], None],
        on_delete: Callable[[str], None],
        on_reembed: Callable[[str], None],
    ) -> None:
        self._db, self._default_model = db, default_embedding_model
        self._check_embedding, self._on_delete, self._on_reembed = check_embedding, on_delete, on_reembed

    def create(
        self,
        name: str,
        description: str = "",
        indexing_technique: str | None = None,
        permission: str = "only_me",
        provider: str = "vendor",
        embedding_model: str | None = None,
        embedding_model_provider: str | None = None,
        retrieval_model: dict[str, Any] | None = None,
        summary_index_setting: dict[str, Any] | None = None,
    ) -> DatasetView:
        name = name.strip()
        if not 1 <= len(name) <= 40:
            raise InvalidParam("Name must be between 1 to 40 characters.", params="name")
        if provider == "external":
            raise InvalidParam("External knowledge bases are not supported by Openify.", params="provider")
        if indexing_technique == "high_quality":
            embedding_model = embedding_model or self._default_model
            embedding_model_provider = embedding_model_provider or EMBEDDED_PROVIDER
            self._check_embedding(embedding_model_provider, embedding_model)
        elif embedding_model or embedding_model_provider:
            self._check_embedding(embedding_model_provider, embedding_model)
        retrieval_model = validate_retrieval_model(retrieval_model, indexing_technique)
        row = Dataset(
            name=name,
            description=description,
            indexing_technique=indexing_technique,
            permission=permission,
            provider=provider,
            embedding_model=embedding_model,
            embedding_model_provider=embedding_model_provider,
            retrieval_model=retrieval_model,
            summary_index_setting=summary_index_setting,
            built_in_field_enabled=False,
            enable_api=True,
        )
        try:
            with self._db.session() as s:
                if s.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
                    raise DatasetNameDuplicate()
                s.add(row)
        except IntegrityError:
            raise DatasetNameDuplicate() from None
        return self.get(row.id)

    def list_page(
        self, page: int, limit: int, keyword: str | None = None, tag_ids: Sequence[str] = ()
    ) -> tuple[list[DatasetView], int]:
        with self._db.session() as s:
            q = select(Dataset)
            if keyword:
                q = q.where(Dataset.name.icontains(keyword, autoescape=True))
            for tag_id in dict.fromkeys(tag_ids):  # every tag must be bound (AND)
                q = q.where(
                    Dataset.id.in_(select(DatasetTagBinding.target_id).where(DatasetTagBinding.tag_id == tag_id))
                )
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(
                q.order_by(Dataset.created_at.desc(), Dataset.id).offset((page - 1) * limit).limit(limit)
            ).all()
            texts = _app_texts(s) if rows else []
            return [self._view(s, r, texts) for r in rows], total

    def get(self, dataset_id: str) -> DatasetView:
        with self._db.session() as s:
            return self._view(s, get_dataset(s, dataset_id))

    def find_row(self, dataset_id: str) -> Dataset | None:
        with self._db.session() as s:
            return s.get(Dataset, dataset_id)

    def update(self, dataset_id: str, changes: dict[str, Any]) -> DatasetView:
        reembed = False
        with self._db.session() as s:
            row = get_dataset(s, dataset_id)
            if "name" in changes and changes["name"] is not None:
                name = str(changes["name"]).strip()
                if not 1 <= len(name) <= 40:
                    raise InvalidParam("Name must be between 1 to 40 characters.", params="name")
                if s.scalar(select(Dataset.id).where(Dataset.name == name, Dataset.id != dataset_id)):
                    raise DatasetNameDuplicate()
                row.name = name
            for key in ("description", "permission"):
                if changes.get(key) is not None:
                    setattr(row, key, changes[key])
            technique = changes.get("indexing_technique") or row.indexing_technique
            if changes.get("indexing_technique") and changes["indexing_technique"] != row.indexing_technique:
                reembed = True
                row.indexing_technique = technique
            model, provider = changes.get("embedding_model"), changes.get("embedding_model_provider")
            if technique == "high_quality" and (model or provider or row.embedding_model is None):
                model = model or row.embedding_model or self._default_model
                provider = (
                    provider
                    or (row.embedding_model_provider if not changes.get("embedding_model") else None)
                    or EMBEDDED_PROVIDER
                )
                self._check_embedding(provider, model)
                if (model, provider) != (row.embedding_model, row.embedding_model_provider):
                    reembed = True
                row.embedding_model, row.embedding_model_provider = model, provider
            if "retrieval_model" in changes and changes["retrieval_model"] is not None:
                row.retrieval_model = validate_retrieval_model(changes["retrieval_model"], technique)
            if "summary_index_setting" in changes:
                row.summary_index_setting = changes["summary_index_setting"]
            row.updated_at = utcnow()
            busy = s.scalar(
                select(Document.id)
                .where(
                    Document.dataset_id == dataset_id,
                    Document.indexing_status.in_(("waiting", "parsing", "cleaning", "splitting", "indexing")),
                )
                .limit(1)
            )
            if reembed and busy is not None:  # the running jobs would index with the old model
                raise DocumentIndexing("Documents are being indexed; change the indexing method after they finish.")
        if reembed:
            self._on_reembed(dataset_id)
        return self.get(dataset_id)

    def delete(self, dataset_id: str) -> None:
        with self._db.session() as s:
            row = get_dataset(s, dataset_id)
            if self._used_by_apps(s, dataset_id):
                raise DatasetInUse()
            s.delete(row)
        self._on_delete(dataset_id)

    def _used_by_apps(self, s: Session, dataset_id: str, app_texts: Sequence[str] | None = None) -> int:
        """Apps whose configuration or workflow names the dataset (Dify's AppDatasetJoin, read from the DSL)."""
        texts = app_texts if app_texts is not None else _app_texts(s)
        return sum(1 for text in texts if dataset_id in text)

    def _view(self, s: Session, row: Dataset, app_texts: Sequence[str] | None = None) -> DatasetView:
        docs = s.execute(
            select(func.count(), func.coalesce(func.sum(Document.word_count), 0)).where(Document.dataset_id == row.id)
        ).one()
        available = (
            s.scalar(
                select(func.count()).where(
                    Document.dataset_id == row.id,
                    Document.indexing_status == "completed",
                    Document.enabled.is_(True),
                    Document.archived.is_(False),
                )
            )
            or 0
        )
        tags = s.scalars(
            select(DatasetTag)
            .join(DatasetTagBinding, DatasetTagBinding.tag_id == DatasetTag.id)
            .where(DatasetTagBinding.target_id == row.id)
            .order_by(DatasetTag.name)
        ).all()
        fields = s.scalars(
            select(DatasetMetadataField)
            .where(DatasetMetadataField.dataset_id == row.id)
            .order_by(DatasetMetadataField.created_at)
        ).all()
        return DatasetView(
            row,
            int(docs[0]),
            int(available),
            int(docs[1]),
            self._used_by_apps(s, row.id, app_texts),
            tuple(tags),
            tuple(fields),
        )


def _app_texts(s: Session) -> list[str]:
    return [
        json.dumps([config or {}, workflow or {}])
        for config, workflow in s.execute(select(App.model_config_, App.workflow))
    ]
