"""The archive records what the request schema declares: its columns, the JSON, the record's
attributes and the A1111 text follow ``core/schema.py``, and the SQL layout stays the one
version 2 always had, a column added in place for a field declared after an index was made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from pixery_widgets.archive import Archive, ArchiveRecord, a1111_parameters, infotext
from pixery_widgets.archive.metadata import fields_from_info, generation_info
from pixery_widgets.archive.schema import COLUMNS, REQUEST_COLUMNS, SCHEMA_VERSION, stored_type
from pixery_widgets.core import schema
from pixery_widgets.core.config import Settings
from pixery_widgets.core.types import GenerationRequest
from tests.test_archive import make_generation, png_bytes

#: The table of index version 2 as it was written out by hand before its request columns
#: were derived from the schema: what a new index must still get, column for column.
V2_TABLE = """
CREATE TABLE generations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
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

SQL_TYPE = {int: "INTEGER", float: "REAL", str: "TEXT"}


def table_info(conn: sqlite3.Connection) -> dict[str, tuple]:
    """Each column: (type, not null, default, primary key)."""
    rows = conn.execute("PRAGMA table_info(generations)")
    return {r[1]: (r[2], r[3], r[4], r[5]) for r in rows}


def index_columns(root: Path) -> dict[str, tuple]:
    conn = sqlite3.connect(root / "index.sqlite")
    try:
        return table_info(conn)
    finally:
        conn.close()


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "arch", settings=Settings())


# -- the index's columns ---------------------------------------------------------------------


def test_the_request_columns_are_the_schemas_fields_with_a_column():
    declared = [f.column for f in schema.FIELDS if f.column]
    assert [f.column for f in REQUEST_COLUMNS] == declared
    assert set(declared) <= set(COLUMNS) and len(set(COLUMNS)) == len(COLUMNS)


def test_a_new_index_has_the_version_2_table_and_a_typed_column_for_every_field(archive):
    conn = sqlite3.connect(":memory:")
    conn.execute(V2_TABLE)
    v2 = table_info(conn)
    conn.close()
    fresh = index_columns(archive.root)
    added = {c: fresh[c] for c in fresh.keys() - v2.keys()}
    assert {c: fresh[c] for c in v2} == v2  # every column it had, as it had it
    assert set(added) == {f.column for f in REQUEST_COLUMNS} - v2.keys()  # none today
    for f in REQUEST_COLUMNS:
        sql_type, not_null, _, _ = fresh[f.column]
        assert sql_type == SQL_TYPE[stored_type(f)]
        assert not_null == (f.default is ...)  # only the prompt is required
        assert stored_type(f) is (f.type if f.type in (int, float) else str)


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35), reason="DROP COLUMN needs SQLite 3.35")
@pytest.mark.parametrize("version", [SCHEMA_VERSION, SCHEMA_VERSION + 1])
def test_a_field_declared_after_the_index_was_made_gets_its_column_on_open(tmp_path, version):
    root = tmp_path / "arch"
    arch = Archive(root, settings=Settings())
    before = arch.save(make_generation("saved before steps had a column"))
    arch.close()
    # The index as a release that did not declare ``steps`` (or a newer one) left it.
    conn = sqlite3.connect(root / "index.sqlite")
    conn.execute("ALTER TABLE generations DROP COLUMN steps")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    assert "steps" not in index_columns(root)

    arch = Archive(root, settings=Settings())
    assert index_columns(root)["steps"] == ("INTEGER", 0, None, 0)  # nullable
    assert arch.get(before.id).steps is None  # it has no value in that column
    assert arch.get(before.id).params["steps"] == 28  # which its JSON still holds
    after = arch.save(make_generation("saved after"))
    assert arch.get(after.id).steps == 28
    assert [r.id for r in arch.search("saved")] == [after.id, before.id]
    arch.close()
    Archive(root, settings=Settings()).close()  # again: nothing to add
    assert list(index_columns(root)).count("steps") == 1
    conn = sqlite3.connect(root / "index.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version  # no new version
    conn.close()


# -- the JSON, the row and the record --------------------------------------------------------


def test_describe_holds_each_field_under_its_column_name():
    described = GenerationRequest(prompt="x", model="animagine", provider="selfhosted").describe()
    assert {f.column or f.name for f in schema.FIELDS} <= set(described)


def test_the_json_holds_every_request_column_as_used():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    g = make_generation()
    g.params["lora_scale"] = 0.8  # a server reporting its default, with no LoRA
    plain = generation_info(g, gen_id="a", created_at=now, batch_id=None)
    assert {f.column for f in REQUEST_COLUMNS} <= set(plain)
    assert plain["steps"] == 28 and plain["negative_prompt"] == "lowres"  # the server's
    assert plain["request"]["steps"] is None  # as asked
    assert plain["lora"] is None and plain["lora_scale"] is None  # it needs a LoRA
    g = make_generation(lora="detail_tweaker", lora_scale=0.6, references=[png_bytes()])
    info = generation_info(g, gen_id="b", created_at=now, batch_id=None)
    assert (info["lora"], info["lora_scale"]) == ("detail_tweaker", 0.6)
    assert info["reference_hash"] == g.request.reference_hash


def test_the_row_casts_each_column_by_its_declared_type():
    info = {"id": "x", "prompt": None, "model": "m", "provider": "p"}
    samples = {int: ("12", 12), float: ("0.5", 0.5), str: (7, "7")}
    optional = [f for f in REQUEST_COLUMNS if f.default is not ...]
    for f in optional:
        info[f.column] = samples[stored_type(f)][0]
    row = fields_from_info(info)
    assert row["prompt"] == ""  # never NULL
    for f in optional:
        assert row[f.column] == samples[stored_type(f)][1], f.column
    unreadable = fields_from_info({**info, "seed": "many", "cfg_scale": [1]})
    assert unreadable["seed"] is None and unreadable["cfg_scale"] is None


def test_a_record_has_each_request_column_as_an_attribute(archive):
    g = make_generation(lora="detail_tweaker", lora_scale=0.6, references=[png_bytes()])
    saved = archive.save(g)
    found = archive.get(saved.id)
    (row,) = archive._query("SELECT * FROM generations WHERE id = ?", (saved.id,))
    names = {f.name for f in dataclasses.fields(ArchiveRecord)}
    for f in REQUEST_COLUMNS:
        assert f.column in names
        value = getattr(found, f.column)
        assert value == row[f.column] == getattr(saved, f.column), f.column
        assert value is None or isinstance(value, stored_type(f)), f.column
    assert found.lora_scale == 0.6 and found.reference_hash == g.request.reference_hash
    assert found == saved  # a snapshot compares by its values


# -- the A1111 text --------------------------------------------------------------------------


def sample_value(f: schema.RequestField):
    if f.type is int:
        return int(f.range[0]) if f.range else 3
    if f.type is float:
        return (f.range[0] + f.range[1]) / 4 if f.range else 0.5
    return f"v-{f.column}"


def written_keys(text: str) -> list[str]:
    """The keys an A1111 reader finds: the LoRA tag, the negative prompt, the settings."""
    lines = text.split("\n")
    keys = ["Lora"] if "<lora:" in lines[0] else []
    keys += [line.split(": ", 1)[0] for line in lines[1:-1] if line.startswith("Negative")]
    return keys + [part.split(": ", 1)[0] for part in lines[-1].split(", ")]


def test_every_field_with_an_a1111_key_is_written_under_it_in_a1111_order():
    declared = list(dict.fromkeys(f.a1111 for f in schema.FIELDS if f.a1111))
    assert all(f.column for f in schema.FIELDS if f.a1111)  # written from its column
    info = {f.column: sample_value(f) for f in REQUEST_COLUMNS}
    text = a1111_parameters({**info, "model": "animagine", "provider": "selfhosted"})
    keys = written_keys(text)
    assert set(declared) <= set(keys), text
    head = [k for k in (*infotext.BEFORE_MODEL, "Model") if k in keys]
    settings = keys[keys.index("Steps") :]
    assert (
        settings[: len(head)] == head == ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model"]
    )
    later = [k for k in declared if k not in (*infotext.BEFORE_MODEL, infotext.NEGATIVE, "Lora")]
    assert settings[len(head) :] == [*later, "Version"]  # the schema's others, in its order


def test_the_keys_the_writer_places_itself_are_the_schemas():
    declared = {f.a1111 for f in schema.FIELDS if f.a1111}
    placed = {infotext.NEGATIVE, infotext.LORA, *infotext.BEFORE_MODEL} - {"Sampler"}
    assert placed <= declared  # a renamed key cannot slip out of its place unnoticed
    assert [f.column for f in infotext.A1111_KEYS["Size"]] == ["width", "height"]
    assert [f.column for f in infotext.A1111_KEYS["Lora"]] == ["lora", "lora_scale"]
    assert [f.column for f in infotext.A1111_KEYS["Negative prompt"]] == ["negative_prompt"]
