"""Finding records: by id, by words and filters, and the values a gallery's menus offer.

The reading half of ``Archive`` (its base class), over the index's one
connection; every query is a single indexed statement, fast at any size.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import ArchiveError, InvalidRequestError, RecordNotFoundError
from ..core.signatures import keyword_only, show_keywords
from .events import browser
from .index import ORDER, SELECT, Filters, Index
from .record import ArchiveRecord, Records
from .schema import COLUMNS

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Finder"]

log = logging.getLogger(__name__)

#: Seconds a word search waits to index the newest images when another program writes.
WORDS_WAIT = 0.5

#: Matches above which a page of a word search walks the rows in order (see ``_common``).
COMMON_MATCHES = 2000

Since = dt.datetime | dt.date | str | float | None
_SPECIAL = ("params_json", "created_at", "path", "thumb_path", "starred", "trashed_at")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _when(text: Any) -> dt.datetime | None:
    """A stored time; None when absent or unreadable (a hand-edited index must not break a
    page)."""
    try:
        return dt.datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


#: The search filters, declared once as ``Filters``' keywords.
_FILTERS = keyword_only(Filters.__init__)


def _shows_filters(method: F) -> F:
    """``help(archive.search)`` lists the filters, with their types and defaults."""
    return show_keywords(method, _FILTERS)


def _filters(text: str | None, given: dict[str, Any]) -> Filters:
    known = [p.name for p in _FILTERS]
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidRequestError(
                f"Archive searches take no {name!r}.{hint} Filters: {', '.join(known)}."
            )
    return Filters(text, **given)


class Finder:
    """Reads records from the index at ``_index`` for the archive at ``root``."""

    root: Path
    _index: Index

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._index.read(sql, args)

    def _not_found(self, record_id: str) -> RecordNotFoundError:
        return RecordNotFoundError(f"No archived image with id {record_id!r} in {self.root}.")

    def _from_row(self, row: sqlite3.Row) -> ArchiveRecord:
        info = dict(row)
        try:
            params = json.loads(info.get("params_json") or "{}")
        except ValueError:
            params = {}
        thumb = info.get("thumb_path")
        trashed = info.get("trashed_at")
        return ArchiveRecord(
            **{k: info[k] for k in COLUMNS if k not in _SPECIAL},
            created_at=_when(info["created_at"]) or _EPOCH,
            path=self.root / info["path"],
            thumb_path=self.root / thumb if thumb else None,
            tags=tuple((info.get("tag_list") or "").split("\n")) if info.get("tag_list") else (),
            params=params if isinstance(params, dict) else {},
            archive=self,
            starred=bool(info.get("starred")),
            trashed_at=_when(trashed),
        )

    def get(self, record_id: str) -> ArchiveRecord:
        """The record with this id; ``RecordNotFoundError`` (a ``KeyError``) if there is none."""
        rows = self._query(f"{SELECT} WHERE g.id = ?", (record_id,))
        if not rows:
            raise self._not_found(record_id)
        return self._from_row(rows[0])

    def records(self, limit: int | None = 100, offset: int = 0) -> Records:
        """The newest records first (not those in the trash)."""
        return self.search(limit=limit, offset=offset)

    @_shows_filters
    def search(
        self,
        text: str | None = None,
        *,
        limit: int | None = 100,
        offset: int = 0,
        **filters: Any,
    ) -> Records:
        """Records matching every filter given, newest first.

        ``text``: every word must begin a word of the prompt or negative prompt
        (``"lightho"`` finds *lighthouse*; case and accents ignored; a word of
        punctuation only is matched as typed, anywhere). ``tag``: one tag or
        several (all must be present), as typed. ``since``/``until`` take a
        datetime, a date, an ISO text or a Unix time. ``starred``: True or False
        to filter, None for any. ``trashed``: False hides the trash, True shows
        only the trash, None both. ``parent``: records regenerated from that id.
        """
        where = _filters(text, filters)
        self._words_up_to_date(where)
        sql = f"{SELECT}{where.sql(in_order=self._common(where, limit))}{ORDER}"
        args = list(where.args)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [_count_arg(limit, "limit"), _count_arg(offset, "offset")]
        elif offset:
            sql += " LIMIT -1 OFFSET ?"
            args.append(_count_arg(offset, "offset"))
        return Records(self._from_row(r) for r in self._query(sql, args))

    @_shows_filters
    def count(self, text: str | None = None, **filters: Any) -> int:
        """How many records ``search`` with the same filters finds (without a limit)."""
        where = _filters(text, filters)
        return int(
            self._query(f"SELECT COUNT(*) FROM generations AS g{where.sql()}", where.args)[0][0]
        )

    def _words_up_to_date(self, where: Filters) -> None:
        """Before a word search: the images saved a moment ago are in the word index too."""
        if where.match is None:
            return
        try:
            self._index.catch_up_words(wait=WORDS_WAIT)
        except ArchiveError as exc:  # locked or full: search what is indexed
            log.warning("searching without the newest images' words: %s", exc)

    def _common(self, where: Filters, limit: int | None) -> bool:
        """Whether the words and tags each match so many rows that a page is found faster
        by walking the rows newest first than by sorting every match (see ``Filters.sql``)."""
        if limit is None or (where.match is None and not where.tags):
            return False
        probes = [("generations_fts WHERE generations_fts MATCH ?", where.match)] * bool(
            where.match
        ) + [("tags WHERE tag = ?", t) for t in where.tags]
        for source, arg in probes:
            sql = f"SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT {COMMON_MATCHES})"
            if int(self._query(sql, (arg,))[0][0]) < COMMON_MATCHES:
                return False
        return True

    def tags(self) -> dict[str, int]:
        """Every tag in use (outside the trash) with how many records carry it, commonest first."""
        # All tags counted on the tag index, less those on trashed records (found through
        # the trash's own small index): a join of every tag with its record took 0.1 s at
        # 10,000 tagged images.
        rows = self._query(
            "SELECT t.tag, t.n - coalesce(gone.n, 0) AS n "
            "FROM (SELECT tag, COUNT(*) AS n FROM tags GROUP BY tag) AS t LEFT JOIN "
            "(SELECT u.tag, COUNT(*) AS n FROM generations AS g INDEXED BY generations_trashed "
            "CROSS JOIN tags AS u "
            "ON u.record_id = g.id WHERE g.trashed_at IS NOT NULL GROUP BY u.tag) AS gone "
            "ON gone.tag = t.tag WHERE t.n - coalesce(gone.n, 0) > 0 ORDER BY n DESC, t.tag"
        )
        return {row[0]: int(row[1]) for row in rows}

    def models(self) -> list[str]:
        """The models of the records outside the trash, sorted (for a filter menu)."""
        return self._distinct("model")

    def loras(self) -> list[str]:
        """The LoRAs of the records outside the trash, sorted (for a filter menu)."""
        return self._distinct("lora")

    def _distinct(self, column: str) -> list[str]:
        """Distinct values outside the trash: one index seek per value, not a scan."""
        shown = f"trashed_at IS NULL AND {column} IS NOT NULL"
        rows = self._query(
            f"WITH RECURSIVE v(x) AS (SELECT (SELECT min({column}) FROM generations WHERE {shown}) "
            f"UNION ALL SELECT (SELECT min({column}) FROM generations WHERE {shown} AND "
            f"{column} > v.x) FROM v WHERE v.x IS NOT NULL) SELECT x FROM v WHERE x IS NOT NULL"
        )
        return [str(row[0]) for row in rows if row[0] != ""]

    def browse(self, **options: Any) -> Any:
        """A gallery of this archive in a notebook (``px.Gallery(archive, **options)``)."""
        make = browser()
        if make is None:
            raise ArchiveError("Browsing needs pixery_widgets imported (it wires the gallery).")
        return make(self, **options)

    def _repr_html_(self) -> str:
        return self.records(limit=50)._repr_html_()


def _count_arg(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"{name} must be a whole number, 0 or more; got {value!r}.")
    return value
