"""The SQLite index: one connection, its errors in words, and the SQL that finds rows.

Rows are rebuilt from the PNGs' own JSON when lost (``Archive.reindex``), so the
index is a cache of the files, never the only copy of anything. Every SQLite
error leaves here as an ``ArchiveError`` saying what to do (a full disk, a
lock held too long by another program, a read-only file).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ArchiveError, InvalidRequestError
from .schema import COLUMNS, WORDS_BEHIND, catch_up_words, migrate

__all__ = [
    "INSERT",
    "INSERT_OR_IGNORE",
    "ORDER",
    "SELECT",
    "Filters",
    "Index",
    "clean_tags",
    "row_from_fields",
    "to_iso",
]

#: Seconds a write waits for another program's write lock before giving up.
BUSY_TIMEOUT = 10.0

#: Longest tag accepted, in characters.
MAX_TAG = 100


def index_error(exc: sqlite3.Error | OSError, path: Path, doing: str) -> ArchiveError:
    """An SQLite (or file) error as a sentence that says what to do."""
    text = str(exc)
    low = text.lower()
    if "full" in low or getattr(exc, "errno", None) == 28:
        advice = f"the disk holding {path} is full; free some space, then try again"
    elif "locked" in low or "busy" in low:
        advice = (
            f"another program held the archive index {path} locked for more than "
            f"{BUSY_TIMEOUT:g} s; try again in a moment"
        )
    elif "readonly" in low or "read-only" in low or "permission" in low:
        advice = f"the archive index {path} cannot be written; check its permissions"
    elif "malformed" in low or "not a database" in low:
        advice = (
            f"the archive index {path} is damaged; move it aside and run Archive().reindex() "
            "to rebuild it from the images"
        )
    else:
        advice = f"the archive index {path} answered: {text}"
    return ArchiveError(f"Could not {doing}: {advice}.", reason="archive index")


class Index:
    """The connection to ``index.sqlite`` (WAL), shared by threads under one lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        conn = sqlite3.connect(
            path, check_same_thread=False, timeout=BUSY_TIMEOUT, isolation_level=None
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, tuple(args)))
            except sqlite3.Error as exc:
                raise index_error(exc, self.path, "read the archive index") from None

    def catch_up_words(self, *, wait: float | None = None) -> None:
        """Add the rows saved since the last time to the word index (quick when none were).

        ``wait``: how long to wait for another program's write lock (default
        ``BUSY_TIMEOUT``); a search waits briefly and, if it cannot, searches the words
        indexed so far.
        """
        if self.read(WORDS_BEHIND)[0][0]:
            with self.write("add the newest images to the archive's word index", wait=wait) as c:
                catch_up_words(c)

    @contextlib.contextmanager
    def write(
        self, doing: str = "update the archive index", *, wait: float | None = None
    ) -> Iterator[sqlite3.Connection]:
        """One transaction (``BEGIN IMMEDIATE``: the write lock up front); rolled back on error.

        ``wait``: seconds to wait for the lock this once, instead of ``BUSY_TIMEOUT``.
        """
        with self._lock:
            conn = self._conn
            try:
                if wait is not None:
                    conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise index_error(exc, self.path, doing) from exc
            finally:
                if wait is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


def row_from_fields(
    fields: Mapping[str, Any],
    created_at: str,
    path: str,
    thumb_path: str | None,
    params_json: str,
) -> tuple[Any, ...]:
    """One index row in ``COLUMNS`` order (paths relative to the archive root)."""
    values = {
        **fields,
        "created_at": created_at,
        "path": path,
        "thumb_path": thumb_path,
        "params_json": params_json,
        "starred": 0,
        "trashed_at": None,
    }
    return tuple(values[c] for c in COLUMNS)


INSERT = f"INSERT INTO generations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
INSERT_OR_IGNORE = INSERT.replace("INSERT", "INSERT OR IGNORE", 1)

#: Every column of a record, its tags (in the order added) joined by newlines.
SELECT = (
    "SELECT g.*, (SELECT group_concat(tag, char(10)) FROM "
    "(SELECT tag FROM tags WHERE record_id = g.id ORDER BY rowid)) AS tag_list "
    "FROM generations AS g"
)


def to_iso(value: dt.datetime | dt.date | str | float | int) -> str:
    """A time filter as the index's UTC ISO text; naive means local time."""
    try:
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.timezone.utc).isoformat()
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.astimezone()
            return value.astimezone(dt.timezone.utc).isoformat()
        if isinstance(value, dt.date):
            day = dt.datetime(value.year, value.month, value.day).astimezone()
            return day.astimezone(dt.timezone.utc).isoformat()
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidRequestError(
        f"Cannot read {value!r} as a time: give a datetime, a date, an ISO text "
        "such as '2025-01-31' or '2025-01-31T18:00', or a Unix time."
    )


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags as typed (spaces at the ends dropped), in order, once each.

    Refused with ``InvalidRequestError``: an empty tag, one over ``MAX_TAG``
    characters, or one with a newline or another control character.
    """
    out: dict[str, None] = {}
    for raw in tags:
        if not isinstance(raw, str):
            raise InvalidRequestError(f"A tag is text; got {type(raw).__name__} {raw!r}.")
        tag = raw.strip()
        if not tag:
            raise InvalidRequestError("A tag cannot be empty.")
        if len(tag) > MAX_TAG:
            raise InvalidRequestError(
                f"A tag can be at most {MAX_TAG} characters; this one has {len(tag)} "
                f"({tag[:30]!r}…)."
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in tag):
            raise InvalidRequestError(
                f"A tag cannot contain a newline or another control character: {tag!r}."
            )
        out[tag] = None
    return tuple(out)


def _fts_phrase(word: str) -> str:
    """One word as an FTS5 string token matched as a prefix: nothing in it is syntax."""
    return '"' + word.replace('"', '""') + '"*'


def _has_word(word: str) -> bool:
    """Whether the FTS tokenizer sees a word in it (letters, digits, anything non-ASCII)."""
    return any(c.isalnum() or ord(c) > 127 for c in word)


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Filters:
    """The ``WHERE`` of a search: each filter given narrows it (``None`` means any)."""

    def __init__(
        self,
        text: str | None = None,
        *,
        model: str | None = None,
        lora: str | None = None,
        tag: str | Iterable[str] | None = None,
        batch: str | None = None,
        since: dt.datetime | dt.date | str | float | None = None,
        until: dt.datetime | dt.date | str | float | None = None,
        starred: bool | None = None,
        trashed: bool | None = False,
        parent: str | None = None,
    ) -> None:
        self.where: list[str] = []
        self.args: list[Any] = []
        #: The FTS5 query of the words and the tags, if any (see ``sql``).
        self.match: str | None = None
        self.tags: tuple[str, ...] = ()
        if text is not None and not isinstance(text, str):
            raise InvalidRequestError(f"Search text must be text; got {type(text).__name__}.")
        if text:  # control characters (a NUL ends an FTS5 string) separate words
            self._words("".join(c if c >= " " else " " for c in text).split())
        given = (("model", model), ("lora", lora), ("batch_id", batch), ("parent_id", parent))
        for column, value in given:
            if value is not None:
                self._add(f"g.{column} = ?", str(value))
        if tag is not None:
            self.tags = clean_tags([tag] if isinstance(tag, str) else tag)
            for one in self.tags:
                self._add(_TAG, one)
        if since is not None:
            self._add("g.created_at >= ?", to_iso(since))
        if until is not None:
            self._add("g.created_at < ?", to_iso(until))
        if starred is not None:
            self.where.append("g.starred = 1" if starred else "g.starred = 0")
        if trashed is not None:
            self.where.append("g.trashed_at IS NOT NULL" if trashed else "g.trashed_at IS NULL")

    def _add(self, clause: str, arg: Any) -> None:
        self.where.append(clause)
        self.args.append(arg)

    def _words(self, words: list[str]) -> None:
        if not words:
            return
        phrases = [_fts_phrase(w) for w in words if _has_word(w)]
        if phrases:
            self.match = " ".join(phrases)
            self._add(_MATCH, self.match)
        for word in (w for w in words if not _has_word(w)):  # "%", "--": as typed, anywhere
            self.where.append(
                "(g.prompt LIKE ? ESCAPE '\\' OR g.negative_prompt LIKE ? ESCAPE '\\')"
            )
            self.args += [_like(word)] * 2

    def sql(self, *, in_order: bool = False) -> str:
        """The ``WHERE``. Words and tags give the set of rows to fetch and sort; with
        ``in_order`` (when they match many rows) each is a test made while walking the rows
        newest first instead, so a page stops as soon as it is full."""
        tests = {_MATCH: _MATCH_TEST, _TAG: _TAG_TEST} if in_order else {}
        where = [tests.get(w, w) for w in self.where]
        return " WHERE " + " AND ".join(where) if where else ""


_MATCH = "g.seq IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH ?)"
_MATCH_TEST = "+" + _MATCH  # no index on seq for this term: the created_at order drives
_TAG = "g.id IN (SELECT record_id FROM tags WHERE tag = ?)"
_TAG_TEST = "EXISTS (SELECT 1 FROM tags WHERE record_id = g.id AND tag = ?)"

#: The order of every list of records: newest first, then the later saved.
ORDER = " ORDER BY g.created_at DESC, g.seq DESC"
