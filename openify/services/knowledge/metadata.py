"""Metadata fields of a dataset (custom and built-in) and their values on documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openify.errors import InvalidParam, NotFound
from openify.services.knowledge.datasets import get_dataset
from openify.storage.db import Database
from openify.storage.tables import Dataset, DatasetMetadataField, Document
from openify.storage.tables.base import utcnow

TYPES = ("string", "number", "time")
# Dify's BuiltInField: filled from the document itself when built-in fields are enabled.
BUILT_IN_FIELDS = (
    ("document_name", "string"),
    ("uploader", "string"),
    ("upload_date", "time"),
    ("last_update_date", "time"),
    ("source", "string"),
)


def built_in_values(doc: Document) -> dict[str, Any]:
    return {
        "document_name": doc.name,
        "uploader": "api",
        "upload_date": int(doc.created_at.replace(tzinfo=UTC).timestamp()),
        "last_update_date": int(doc.updated_at.replace(tzinfo=UTC).timestamp()),
        "source": "file_upload" if doc.data_source_type == "upload_file" else "text",
    }


def metadata_by_name(doc: Document, fields: Sequence[DatasetMetadataField], built_in: bool) -> dict[str, Any]:
    """A document's metadata keyed by field name, as filters and retriever resources see it."""
    values = {f.name: doc.doc_metadata[f.id] for f in fields if f.id in (doc.doc_metadata or {})}
    if built_in:
        values.update(built_in_values(doc))
    return values


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParam("name is required", params="name")
    if len(name) > 255:
        raise InvalidParam("Metadata name cannot exceed 255 characters.", params="name")
    return name.strip()


def _check_value(field: DatasetMetadataField, value: Any) -> Any:
    if value is None:
        return None
    if field.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                return float(value) if "." in str(value) else int(str(value))
            except ValueError:
                raise InvalidParam(f"metadata {field.name} must be a number", params="value") from None
        return value
    if field.type == "time":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidParam(f"metadata {field.name} must be a time", params="value")
        return value
    return value if isinstance(value, str) else str(value)


class MetadataService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _field(self, s: Session, dataset_id: str, metadata_id: str) -> DatasetMetadataField:
        f = s.get(DatasetMetadataField, metadata_id)
        if f is None or f.dataset_id != dataset_id:
            raise NotFound("Metadata not found.")
        return f

    def create(self, dataset_id: str, type_: object, name: object) -> DatasetMetadataField:
        clean = _name(name)
        if type_ not in TYPES:
            raise InvalidParam("type must be string, number or time", params="type")
        if clean in {n for n, _ in BUILT_IN_FIELDS}:
            raise InvalidParam("Metadata name already exists in Built-in fields.", params="name")
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            if s.scalar(
                select(DatasetMetadataField.id).where(
                    DatasetMetadataField.dataset_id == dataset_id, DatasetMetadataField.name == clean
                )
            ):
                raise InvalidParam("Metadata name already exists.", params="name")
            field = DatasetMetadataField(dataset_id=dataset_id, name=clean, type=str(type_))
            s.add(field)
        return field

    def list_fields(self, dataset_id: str) -> tuple[list[tuple[DatasetMetadataField, int]], bool]:
        with self._db.session() as s:
            dataset = get_dataset(s, dataset_id)
            fields = list(
                s.scalars(
                    select(DatasetMetadataField)
                    .where(DatasetMetadataField.dataset_id == dataset_id)
                    .order_by(DatasetMetadataField.created_at)
                )
            )
            docs = list(s.scalars(select(Document.doc_metadata).where(Document.dataset_id == dataset_id)))
            counts = [(f, sum(1 for m in docs if f.id in (m or {}))) for f in fields]
            return counts, dataset.built_in_field_enabled

    def rename(self, dataset_id: str, metadata_id: str, name: object) -> DatasetMetadataField:
        clean = _name(name)
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            f = self._field(s, dataset_id, metadata_id)
            if clean in {n for n, _ in BUILT_IN_FIELDS} or s.scalar(
                select(DatasetMetadataField.id).where(
                    DatasetMetadataField.dataset_id == dataset_id,
                    DatasetMetadataField.name == clean,
                    DatasetMetadataField.id != f.id,
                )
            ):
                raise InvalidParam("Metadata name already exists.", params="name")
            f.name, f.updated_at = clean, utcnow()
        return f

    def delete(self, dataset_id: str, metadata_id: str) -> None:
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            f = self._field(s, dataset_id, metadata_id)
            for doc in s.scalars(select(Document).where(Document.dataset_id == dataset_id)):
                if f.id in (doc.doc_metadata or {}):
                    doc.doc_metadata = {k: v for k, v in doc.doc_metadata.items() if k != f.id}
            s.delete(f)

    def set_built_in(self, dataset_id: str, action: str) -> None:
        if action not in ("enable", "disable"):
            raise NotFound("Action not found.")
        with self._db.session() as s:
            get_dataset(s, dataset_id).built_in_field_enabled = action == "enable"

    def set_document_values(self, dataset_id: str, operations: Sequence[Mapping[str, Any]]) -> None:
        """Dify's `operation_data`: each document's metadata_list replaces (or, with partial_update, merges)."""
        if not isinstance(operations, list) or not operations:
            raise InvalidParam("operation_data is required", params="operation_data")
        with self._db.session() as s:
            get_dataset(s, dataset_id)
            fields = {
                f.id: f
                for f in s.scalars(select(DatasetMetadataField).where(DatasetMetadataField.dataset_id == dataset_id))
            }
            for op in operations:
                if not isinstance(op, Mapping) or not isinstance(op.get("document_id"), str):
                    raise InvalidParam("operation_data[].document_id is required", params="document_id")
                items = op.get("metadata_list")
                if not isinstance(items, list):
                    raise InvalidParam("operation_data[].metadata_list is required", params="metadata_list")
                doc = s.get(Document, op["document_id"])
                if doc is None or doc.dataset_id != dataset_id:
                    raise NotFound("Document not found.")
                values: dict[str, Any] = dict(doc.doc_metadata or {}) if op.get("partial_update") else {}
                for item in items:
                    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                        raise InvalidParam("metadata_list[].id is required", params="id")
                    field = fields.get(item["id"])
                    if field is None:
                        raise NotFound("Metadata not found.")
                    values[field.id] = _check_value(field, item.get("value"))
                doc.doc_metadata = values
                doc.updated_at = utcnow()

    def fields(self, s: Session, dataset: Dataset) -> list[DatasetMetadataField]:
        return list(s.scalars(select(DatasetMetadataField).where(DatasetMetadataField.dataset_id == dataset.id)))
