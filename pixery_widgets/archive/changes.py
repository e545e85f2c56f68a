"""Changing records: stars, tags, the trash (the writing half of ``Archive`` for a gallery).

Each change is one transaction and returns the record as it is now; an unknown
id raises ``RecordNotFoundError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import RecordNotFoundError
from .events import announce_changed
from .index import Index, clean_tags
from .metadata import utcnow
from .record import ArchiveRecord

__all__ = ["Changes"]


class Changes:
    """Star, tag and trash the records of the index at ``_index``."""

    _index: Index
    root: Path

    if TYPE_CHECKING:  # provided by Finder, the other half of Archive

        def get(self, record_id: str) -> ArchiveRecord: ...

        def _not_found(self, record_id: str) -> RecordNotFoundError: ...

    def _change(self, record: str | ArchiveRecord, sql: str, args: Sequence[Any]) -> ArchiveRecord:
        record_id = record.id if isinstance(record, ArchiveRecord) else str(record)
        with self._index.write("change the record in the archive index") as conn:
            found = conn.execute("SELECT 1 FROM generations WHERE id = ?", (record_id,)).fetchone()
            if found is not None and sql:
                conn.execute(sql, (*args, record_id))
        if found is None:
            raise self._not_found(record_id)
        announce_changed(self.root, record_id)  # an open gallery redraws it
        return self.get(record_id)

    def star(self, record: str | ArchiveRecord, *, starred: bool = True) -> ArchiveRecord:
        """Star (or, with ``starred=False``, unstar) a record; returns it updated."""
        return self._change(
            record, "UPDATE generations SET starred = ? WHERE id = ?", (int(starred),)
        )

    def trash(self, record: str | ArchiveRecord, *, trashed: bool = True) -> ArchiveRecord:
        """Move a record to the trash (hidden from searches, the file kept) or back out."""
        if trashed:
            sql = "UPDATE generations SET trashed_at = coalesce(trashed_at, ?) WHERE id = ?"
            return self._change(record, sql, (utcnow().isoformat(),))
        return self._change(record, "UPDATE generations SET trashed_at = NULL WHERE id = ?", ())

    def tag(self, record: str | ArchiveRecord, *tags: str) -> ArchiveRecord:
        """Add ``tags`` (as typed; see ``clean_tags`` for what is refused); returns the record."""
        cleaned = clean_tags(tags)
        record_id = record.id if isinstance(record, ArchiveRecord) else str(record)
        with self._index.write("tag the record in the archive index") as conn:
            found = conn.execute("SELECT 1 FROM generations WHERE id = ?", (record_id,)).fetchone()
            if found is not None:
                conn.executemany(
                    "INSERT OR IGNORE INTO tags (record_id, tag) VALUES (?, ?)",
                    [(record_id, t) for t in cleaned],
                )
        if found is None:
            raise self._not_found(record_id)
        announce_changed(self.root, record_id)  # an open gallery redraws it
        return self.get(record_id)

    def untag(self, record: str | ArchiveRecord, *tags: str) -> ArchiveRecord:
        """Remove ``tags`` from a record (tags it does not have are ignored)."""
        cleaned = clean_tags(tags)
        marks = ", ".join("?" * len(cleaned))
        sql = f"DELETE FROM tags WHERE tag IN ({marks}) AND record_id = ?" if cleaned else ""
        return self._change(record, sql, cleaned)
