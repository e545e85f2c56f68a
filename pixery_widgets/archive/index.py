"""The SQLite index: one row per image, its schema, and the pieces of SQL that find rows.

Rows are rebuilt from the PNGs' own JSON when lost (``Archive.reindex``), so the
index is a cache of the files, never the only copy of anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "COLUMNS",
    "INSERT",
    "INSERT_OR_IGNORE",
    "SCHEMA",
    "like_escape",
    "row_from_fields",
    "tags_text",
    "tags_tuple",
    "to_iso",
]

SCHEMA_VERSION = 1

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
    "tags",
    "params_json",
)

SCHEMA = f"""
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
    tags TEXT NOT NULL DEFAULT '',
    params_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_created_at ON generations (created_at);
CREATE INDEX IF NOT EXISTS generations_batch_id ON generations (batch_id);
CREATE INDEX IF NOT EXISTS generations_model ON generations (model);
PRAGMA user_version = {SCHEMA_VERSION};
"""


def row_from_fields(
    fields: Mapping[str, Any],
    created_at: str,
    path: str,
    thumb_path: str | None,
    tags: str,
    params_json: str,
) -> tuple[Any, ...]:
    """One index row in ``COLUMNS`` order (paths relative to the archive root)."""
    values = {
        **fields,
        "created_at": created_at,
        "path": path,
        "thumb_path": thumb_path,
        "tags": tags,
        "params_json": params_json,
    }
    return tuple(values[c] for c in COLUMNS)


INSERT = f"INSERT INTO generations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
INSERT_OR_IGNORE = INSERT.replace("INSERT", "INSERT OR IGNORE", 1)


def to_iso(value: dt.datetime | dt.date | str | float | int) -> str:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).isoformat()
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # naive means local time
        return value.astimezone(dt.timezone.utc).isoformat()
    return dt.datetime(value.year, value.month, value.day).astimezone().isoformat()


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tags_text(tags: Iterable[str]) -> str:
    cleaned = [t.replace(",", " ").strip() for t in tags if t and t.strip()]
    return f",{','.join(cleaned)}," if cleaned else ""


def tags_tuple(text: str | None) -> tuple[str, ...]:
    return tuple(t for t in (text or "").split(",") if t)
