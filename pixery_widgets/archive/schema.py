"""The SQLite schema of the index, and its migration from every earlier release, in place.

Version 1 (the first release) had one table keyed by the text id, with the
tags as comma-joined text. Version 2 gives each row a stable integer key
(``seq``, which VACUUM never renumbers) for an FTS5 word index over the
prompts (external content; rows are added to it in batches after they are
saved, whoever saved them, an older release too), adds star, trash and
lineage columns, and keeps tags in their own table, one row per tag as typed.
The ``tags`` column stays, empty, for an older release to write into; what it
writes there is moved on the next open.

The request's columns are not written out here: they are the request schema's
(``core/schema.py``: each field with a ``column``, its SQL type following the
field's type), so a field is declared once. A field declared after an index was
made is a column that index lacks: ``migrate`` adds it (``ALTER TABLE ADD
COLUMN``, nullable: the rows saved before have no value for it). That is no new
``SCHEMA_VERSION``: a release that does not know the column names the columns it
writes and reads, and goes on as before. Every other column, and the rest of the
layout, is written out below and changes only with a version.

``migrate`` runs on every open, in one transaction, and does only what is
missing: safe to run twice, and after an older release reset the version.
"""

from __future__ import annotations

import logging
import sqlite3

from ..core import schema as request_schema
from ..core.schema import RequestField

__all__ = [
    "COLUMNS",
    "REQUEST_COLUMNS",
    "SCHEMA_VERSION",
    "WORDS_BEHIND",
    "catch_up_words",
    "migrate",
    "stored_type",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

#: The request fields that have a column (``core/schema.py``), in the schema's order.
REQUEST_COLUMNS: tuple[RequestField, ...] = tuple(f for f in request_schema.FIELDS if f.column)

_SQL_TYPES = {int: "INTEGER", float: "REAL", str: "TEXT"}


def stored_type(f: RequestField) -> type:
    """The type a request column holds: ``int`` or ``float`` as declared, text otherwise (a
    reference is kept as its hash)."""
    return f.type if f.type in (int, float) else str


def _column_sql(f: RequestField) -> str:
    required = " NOT NULL" if f.default is ... else ""  # the prompt
    return f"{f.column} {_SQL_TYPES[stored_type(f)]}{required}"


#: The columns this release writes, in the order of ``INSERT``.
COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    *(str(f.column) for f in REQUEST_COLUMNS),
    "model",
    "provider",
    "elapsed_s",
    "cost_usd",
    "path",
    "thumb_path",
    "batch_id",
    "params_json",
    "starred",
    "trashed_at",
    "parent_id",
)

_TABLE = (
    """
CREATE TABLE {name} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
"""
    + "".join(f"    {_column_sql(f)},\n" for f in REQUEST_COLUMNS)
    + """    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    elapsed_s REAL,
    cost_usd REAL,
    path TEXT NOT NULL,
    thumb_path TEXT,
    batch_id TEXT,
    params_json TEXT NOT NULL,
    starred INTEGER NOT NULL DEFAULT 0,
    trashed_at TEXT,
    parent_id TEXT,
    tags TEXT NOT NULL DEFAULT ''
)"""
)

_EXTRAS = (
    # Tags in their own table: any text a user types (commas, quotes, emoji) as typed;
    # the rowid keeps the order they were added in.
    """CREATE TABLE IF NOT EXISTS tags (
        record_id TEXT NOT NULL, tag TEXT NOT NULL, UNIQUE (record_id, tag))""",
    "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, record_id)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5 (
        prompt, negative_prompt, content = 'generations', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2')""",
    # The rows up to this seq are in the word index; later ones are added in batches
    # (``catch_up_words``), off the save's path: one FTS5 write per image costs more
    # than the rest of the row. AUTOINCREMENT: a seq is never used twice.
    "CREATE TABLE IF NOT EXISTS words_mark (seq INTEGER NOT NULL)",
    "INSERT INTO words_mark (seq) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM words_mark)",
    """CREATE TRIGGER IF NOT EXISTS generations_fts_delete AFTER DELETE ON generations
    WHEN old.seq <= (SELECT seq FROM words_mark) BEGIN
        INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt)
        VALUES ('delete', old.seq, old.prompt, old.negative_prompt);
    END""",
    """CREATE TRIGGER IF NOT EXISTS generations_fts_update
    AFTER UPDATE OF prompt, negative_prompt ON generations
    WHEN old.seq <= (SELECT seq FROM words_mark) BEGIN
        INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt)
        VALUES ('delete', old.seq, old.prompt, old.negative_prompt);
        INSERT INTO generations_fts (rowid, prompt, negative_prompt)
        VALUES (new.seq, new.prompt, new.negative_prompt);
    END""",
    # Partial where they can be, so a plain save updates as few indexes as before.
    "CREATE INDEX IF NOT EXISTS generations_created_at ON generations (created_at)",
    """CREATE INDEX IF NOT EXISTS generations_batch_id ON generations (batch_id)
        WHERE batch_id IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS generations_model ON generations (model)
        WHERE trashed_at IS NULL""",
    """CREATE INDEX IF NOT EXISTS generations_lora ON generations (lora)
        WHERE lora IS NOT NULL AND trashed_at IS NULL""",
    """CREATE INDEX IF NOT EXISTS generations_parent_id ON generations (parent_id)
        WHERE parent_id IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS generations_starred ON generations (created_at)
        WHERE starred = 1""",
    """CREATE INDEX IF NOT EXISTS generations_trashed ON generations (created_at)
        WHERE trashed_at IS NOT NULL""",
)


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(generations)")}


def _legacy_tags(text: str) -> list[str]:
    """Version 1's ``,a,b,`` text as tags, as it showed them (a control character, refused
    now, becomes a space)."""
    tags = ("".join(c if " " <= c != "\x7f" else " " for c in t).strip() for t in text.split(","))
    return [t for t in tags if t]


def _move_legacy_tags(conn: sqlite3.Connection) -> int:
    rows = conn.execute("SELECT id, tags FROM generations WHERE tags != ''").fetchall()
    for record_id, text in rows:
        conn.executemany(
            "INSERT OR IGNORE INTO tags (record_id, tag) VALUES (?, ?)",
            [(record_id, tag[:100]) for tag in _legacy_tags(text)],
        )
    # Emptied, so running again (after an older release wrote here) moves only new ones.
    conn.execute("UPDATE generations SET tags = '' WHERE tags != ''")
    return len(rows)


def _layout(conn: sqlite3.Connection) -> str:
    """``none`` (a new index), ``earlier`` (a table to rebuild: no AUTOINCREMENT seq) or
    ``current`` (words_mark too, which the last step creates)."""
    tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    if "generations" not in tables:
        return "none"
    if "AUTOINCREMENT" not in str(tables["generations"]).upper():
        return "earlier"
    return "current" if "words_mark" in tables else "partial"


def _rebuild(conn: sqlite3.Connection, have: set[str]) -> None:
    """A table of an earlier layout copied into this one (oldest first, so ``seq`` follows
    the order the images were made in); its indexes, triggers and word index go with it."""
    conn.execute(_TABLE.format(name="generations_new"))
    new = {row[1] for row in conn.execute("PRAGMA table_info(generations_new)")}
    shared = ", ".join(c for c in (*COLUMNS, "tags") if c in have and c in new)
    conn.execute(
        f"INSERT INTO generations_new ({shared}) SELECT {shared} FROM generations "
        "ORDER BY created_at, id"
    )
    conn.execute("DROP TABLE IF EXISTS generations_fts")
    conn.execute("DROP TABLE generations")
    conn.execute("ALTER TABLE generations_new RENAME TO generations")


def _add_request_columns(conn: sqlite3.Connection) -> None:
    """Add each request column the table lacks: a field declared after the index was made."""
    have = _columns(conn)
    for f in REQUEST_COLUMNS:
        if have and f.column not in have:
            sql_type = _SQL_TYPES[stored_type(f)]
            conn.execute(f"ALTER TABLE generations ADD COLUMN {f.column} {sql_type}")
            log.info("archive index: added the column %s", f.column)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the index to ``SCHEMA_VERSION`` in one transaction (autocommit connection).

    Raises ``sqlite3.Error``; the caller words it. A newer version's layout is left
    alone but for a request column it lacks, which this release writes (added, nullable,
    as for any index: harmless to a release that does not know it).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        layout = _layout(conn)
        if version > SCHEMA_VERSION:
            log.warning("archive index is version %s, newer than this release's", version)
        elif version < SCHEMA_VERSION or layout != "current":
            if layout == "none":
                conn.execute(_TABLE.format(name="generations"))
            elif layout == "earlier":
                _rebuild(conn, _columns(conn))
            for statement in _EXTRAS:
                conn.execute(statement)
            moved = _move_legacy_tags(conn)
            _fill_words(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if version:
                log.info("archive index migrated from version %s (%s tagged rows)", version, moved)
        _add_request_columns(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fill_words(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO generations_fts (generations_fts) VALUES ('rebuild')")
    conn.execute("UPDATE words_mark SET seq = (SELECT coalesce(max(seq), 0) FROM generations)")


#: Whether rows were added after the word index was last brought up to date.
WORDS_BEHIND = (
    "SELECT (SELECT coalesce(max(seq), 0) FROM generations) > (SELECT seq FROM words_mark)"
)


def catch_up_words(conn: sqlite3.Connection) -> None:
    """Add the rows saved since the last catch-up to the word index (in the caller's
    write transaction): every row above the mark, whoever wrote it, an older release too."""
    (mark,) = conn.execute("SELECT seq FROM words_mark").fetchone()
    (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM generations").fetchone()
    if top > mark:
        conn.execute(
            "INSERT INTO generations_fts (rowid, prompt, negative_prompt) "
            "SELECT seq, prompt, negative_prompt FROM generations WHERE seq > ? ORDER BY seq",
            (mark,),
        )
        conn.execute("UPDATE words_mark SET seq = ?", (top,))
