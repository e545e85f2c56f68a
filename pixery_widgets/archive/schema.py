"""The SQLite schema of the index, and its migration from every earlier release, in place.

Version 1 (the first release) had one table with the tags as comma-joined text.
Version 2 adds star, trash and lineage columns, a table of tags (one row per
tag, stored as typed) and an FTS5 word index over the prompts, kept in step by
a trigger, so an older release still writing to the same folder keeps it
right. ``migrate`` runs on every open, in one transaction, and does only what
is missing: it is safe to run twice, and after an older release reset the
version number.
"""

from __future__ import annotations

import logging
import sqlite3

__all__ = ["COLUMNS", "SCHEMA_VERSION", "migrate"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

#: The columns this release writes, in the order of ``INSERT``.
COLUMNS = (
    "id",
    "created_at",
    "prompt",
    "negative_prompt",
    "model",
    "provider",
    "seed",
    "width",
    "height",
    "steps",
    "cfg_scale",
    "lora",
    "lora_scale",
    "reference_hash",
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

_TABLE = """
CREATE TABLE IF NOT EXISTS generations (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    seed INTEGER,
    width INTEGER,
    height INTEGER,
    steps INTEGER,
    cfg_scale REAL,
    lora TEXT,
    lora_scale REAL,
    reference_hash TEXT,
    elapsed_s REAL,
    cost_usd REAL,
    path TEXT NOT NULL,
    thumb_path TEXT,
    batch_id TEXT,
    params_json TEXT NOT NULL,
    starred INTEGER NOT NULL DEFAULT 0,
    trashed_at TEXT,
    parent_id TEXT
)"""

#: Columns added since version 1 (``ALTER TABLE`` when missing).
_ADDED = {
    "starred": "INTEGER NOT NULL DEFAULT 0",
    "trashed_at": "TEXT",
    "parent_id": "TEXT",
}

_EXTRAS = (
    # Tags in their own table: any text a user types (commas, quotes, emoji) as typed;
    # the rowid keeps the order they were added in.
    """CREATE TABLE IF NOT EXISTS tags (
        record_id TEXT NOT NULL, tag TEXT NOT NULL, UNIQUE (record_id, tag))""",
    "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag)",
    # Its own copy of the words (an external-content table would hang on the table's
    # rowid, which VACUUM may renumber: this one is keyed by the record's id).
    """CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5 (
        id UNINDEXED, prompt, negative_prompt, tokenize = 'unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER IF NOT EXISTS generations_fts_insert AFTER INSERT ON generations BEGIN
        INSERT INTO generations_fts (id, prompt, negative_prompt)
        VALUES (new.id, new.prompt, coalesce(new.negative_prompt, ''));
    END""",
    "CREATE INDEX IF NOT EXISTS generations_created_at ON generations (created_at)",
    "CREATE INDEX IF NOT EXISTS generations_batch_id ON generations (batch_id)",
    "CREATE INDEX IF NOT EXISTS generations_model ON generations (model)",
    "CREATE INDEX IF NOT EXISTS generations_lora ON generations (lora)",
    "CREATE INDEX IF NOT EXISTS generations_parent_id ON generations (parent_id)",
    """CREATE INDEX IF NOT EXISTS generations_shown ON generations (created_at)
        WHERE trashed_at IS NULL""",
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


def _fill_words(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM generations_fts")
    conn.execute(
        "INSERT INTO generations_fts (id, prompt, negative_prompt) "
        "SELECT id, prompt, coalesce(negative_prompt, '') FROM generations"
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the index to ``SCHEMA_VERSION`` in one transaction (autocommit connection).

    Raises ``sqlite3.Error``; the caller words it. A newer version is left alone.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            conn.execute(_TABLE)
            have = _columns(conn)
            for name, kind in _ADDED.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE generations ADD COLUMN {name} {kind}")
            for statement in _EXTRAS:
                conn.execute(statement)
            moved = _move_legacy_tags(conn) if "tags" in have else 0
            _fill_words(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if version:
                log.info("archive index migrated from version %s (%s tagged rows)", version, moved)
        elif version > SCHEMA_VERSION:
            log.warning("archive index is version %s, newer than this release's", version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
