"""The SQLite schema of the index, and its migration from every earlier release, in place.

Version 1 (the first release) had one table keyed by the text id, with the
tags as comma-joined text. Version 2 gives each row a stable integer key
(``seq``, which VACUUM never renumbers) for an FTS5 word index over the
prompts (external content, kept in step by triggers, so an older release
still writing to the same folder keeps it right), adds star, trash and
lineage columns, and keeps tags in their own table, one row per tag as typed.
The ``tags`` column stays, empty, for an older release to write into; what it
writes there is moved on the next open.

``migrate`` runs on every open, in one transaction, and does only what is
missing: safe to run twice, and after an older release reset the version.
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
CREATE TABLE {name} (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
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
    parent_id TEXT,
    tags TEXT NOT NULL DEFAULT ''
)"""

_EXTRAS = (
    # Tags in their own table: any text a user types (commas, quotes, emoji) as typed;
    # the rowid keeps the order they were added in.
    """CREATE TABLE IF NOT EXISTS tags (
        record_id TEXT NOT NULL, tag TEXT NOT NULL, UNIQUE (record_id, tag))""",
    "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, record_id)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5 (
        prompt, negative_prompt, content = 'generations', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER IF NOT EXISTS generations_fts_insert AFTER INSERT ON generations BEGIN
        INSERT INTO generations_fts (rowid, prompt, negative_prompt)
        VALUES (new.seq, new.prompt, new.negative_prompt);
    END""",
    """CREATE TRIGGER IF NOT EXISTS generations_fts_delete AFTER DELETE ON generations BEGIN
        INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt)
        VALUES ('delete', old.seq, old.prompt, old.negative_prompt);
    END""",
    """CREATE TRIGGER IF NOT EXISTS generations_fts_update
    AFTER UPDATE OF prompt, negative_prompt ON generations BEGIN
        INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt)
        VALUES ('delete', old.seq, old.prompt, old.negative_prompt);
        INSERT INTO generations_fts (rowid, prompt, negative_prompt)
        VALUES (new.seq, new.prompt, new.negative_prompt);
    END""",
    "CREATE INDEX IF NOT EXISTS generations_created_at ON generations (created_at)",
    "CREATE INDEX IF NOT EXISTS generations_batch_id ON generations (batch_id)",
    """CREATE INDEX IF NOT EXISTS generations_model ON generations (model)
        WHERE trashed_at IS NULL""",
    """CREATE INDEX IF NOT EXISTS generations_lora ON generations (lora)
        WHERE trashed_at IS NULL""",
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


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the index to ``SCHEMA_VERSION`` in one transaction (autocommit connection).

    Raises ``sqlite3.Error``; the caller words it. A newer version is left alone.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            have = _columns(conn)
            if not have:
                conn.execute(_TABLE.format(name="generations"))
            elif "seq" not in have:
                _rebuild(conn, have)
            for statement in _EXTRAS:
                conn.execute(statement)
            moved = _move_legacy_tags(conn)
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


def _fill_words(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO generations_fts (generations_fts) VALUES ('rebuild')")
