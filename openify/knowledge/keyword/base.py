"""The keyword index contract: chunk ids and texts in, ranked chunk ids out."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Protocol


class KeywordIndex(Protocol):
    """A per-dataset full-text index (economy datasets use it alone; high_quality ones beside vectors)."""

    name: ClassVar[str]

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index texts under chunk ids; an id already present is replaced."""
        ...

    def delete(self, ids: Iterable[str]) -> None:
        """Remove chunk ids; they stop matching at once. Unknown ids are ignored."""
        ...

    def search(self, query: str, top_k: int, filter_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        """Best chunks for `query` as (chunk id, raw score > 0), best first; only ids in `filter_ids` if given."""
        ...

    def count(self) -> int:
        """Chunks in the index."""
        ...

    def persist(self) -> None:
        """Write the index to its directory."""
        ...


class KeywordIndexFactory(Protocol):
    """What `r.keyword_indexes` holds: opens (or creates) the index kept in a directory, or in memory with None."""

    def __call__(self, directory: Path | None = None) -> KeywordIndex:
        """The index of `directory`."""
        ...
