"""Knowledge tags and their bindings to datasets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from openify.errors import InvalidParam, NotFound
from openify.storage.db import Database
from openify.storage.tables import Dataset, DatasetTag, DatasetTagBinding

KNOWLEDGE = "knowledge"


@dataclass(frozen=True, slots=True)
class TagView:
    row: DatasetTag
    binding_count: int = 0


def _name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 50:
        raise InvalidParam("Name must be between 1 to 50 characters.", params="name")
    return name.strip()


class TagService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list_all(self) -> list[TagView]:
        with self._db.session() as s:
            counts = (
                select(DatasetTagBinding.tag_id, func.count().label("n")).group_by(DatasetTagBinding.tag_id).subquery()
            )
            rows = s.execute(
                select(DatasetTag, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.tag_id == DatasetTag.id)
                .where(DatasetTag.type == KNOWLEDGE)
                .order_by(DatasetTag.created_at.desc())
            ).all()
            return [TagView(t, int(n)) for t, n in rows]

    def create(self, name: object) -> TagView:
        clean = _name(name)
        with self._db.session() as s:
            if s.scalar(select(DatasetTag.id).where(DatasetTag.type == KNOWLEDGE, DatasetTag.name == clean)):
                raise InvalidParam("Tag name already exists", params="name")
            tag = DatasetTag(name=clean, type=KNOWLEDGE)
            s.add(tag)
        return TagView(tag, 0)

    def _get(self, s: object, tag_id: object) -> DatasetTag:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)  # noqa: S101 - private helper
        tag = s.get(DatasetTag, tag_id) if isinstance(tag_id, str) else None
        if tag is None or tag.type != KNOWLEDGE:
            raise NotFound("Tag not found.")
        return tag

    def rename(self, tag_id: object, name: object) -> TagView:
        clean = _name(name)
        with self._db.session() as s:
            tag = self._get(s, tag_id)
            if s.scalar(
                select(DatasetTag.id).where(
                    DatasetTag.type == KNOWLEDGE, DatasetTag.name == clean, DatasetTag.id != tag.id
                )
            ):
                raise InvalidParam("Tag name already exists", params="name")
            tag.name = clean
            n = s.scalar(select(func.count()).where(DatasetTagBinding.tag_id == tag.id)) or 0
        return TagView(tag, int(n))

    def delete(self, tag_id: object) -> None:
        with self._db.session() as s:
            s.delete(self._get(s, tag_id))

    def bind(self, tag_ids: Sequence[str], target_id: str) -> None:
        with self._db.session() as s:
            if s.get(Dataset, target_id) is None:
                raise NotFound("Dataset not found.")
            for tag_id in dict.fromkeys(tag_ids):
                self._get(s, tag_id)
                if not s.scalar(
                    select(DatasetTagBinding.id).where(
                        DatasetTagBinding.tag_id == tag_id, DatasetTagBinding.target_id == target_id
                    )
                ):
                    s.add(DatasetTagBinding(tag_id=tag_id, target_id=target_id))

    def unbind(self, tag_ids: Sequence[str], target_id: str) -> None:
        with self._db.session() as s:
            if s.get(Dataset, target_id) is None:
                raise NotFound("Dataset not found.")
            s.execute(
                delete(DatasetTagBinding).where(
                    DatasetTagBinding.tag_id.in_(list(tag_ids)), DatasetTagBinding.target_id == target_id
                )
            )

    def of_dataset(self, dataset_id: str) -> list[DatasetTag]:
        with self._db.session() as s:
            if s.get(Dataset, dataset_id) is None:
                raise NotFound("Dataset not found.")
            return list(
                s.scalars(
                    select(DatasetTag)
                    .join(DatasetTagBinding, DatasetTagBinding.tag_id == DatasetTag.id)
                    .where(DatasetTagBinding.target_id == dataset_id)
                    .order_by(DatasetTag.name)
                )
            )
