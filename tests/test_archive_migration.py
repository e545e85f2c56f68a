"""An archive written by the first release opens, migrates in place and loses nothing.

``fixtures/archive-v1`` was written by the first release itself (see
``fixtures/make_archive_v1.py``), with ``expected.json`` holding what that
release read back from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from pixery_widgets.archive import Archive, schema
from pixery_widgets.core import schema as request_schema
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError
from pixery_widgets.session.validation import build_request
from tests.test_archive import make_generation, run

FIXTURE = Path(__file__).parent / "fixtures" / "archive-v1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())


@pytest.fixture
def old_root(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    shutil.copytree(FIXTURE, root)
    (root / "expected.json").unlink()
    return root


def user_version(root: Path) -> int:
    with sqlite3.connect(root / "index.sqlite") as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def legacy_tags(root: Path) -> dict[str, str]:
    conn = sqlite3.connect(root / "index.sqlite")
    try:
        return dict(conn.execute("SELECT id, tags FROM generations"))
    finally:
        conn.close()


def regenerate_kwargs(record) -> dict:
    out = dict(record.regenerate_kwargs())
    if "reference" in out:
        out["reference"] = [hashlib.sha256(r).hexdigest() for r in out["reference"]]
    return out


def as_replayed(first_release_kwargs: dict) -> dict:
    """The first release's replay as this one writes it: only what is set. The first
    release also passed ``negative_prompt=None``, the field's default, which changes nothing
    in the request (``test_the_first_releases_records_replay_the_same_request``)."""
    dropped = {k for k, v in first_release_kwargs.items() if v is None}
    assert all(request_schema.field(k).default is None for k in dropped), dropped
    return {k: v for k, v in first_release_kwargs.items() if k not in dropped}


def test_the_fixture_is_what_the_first_release_wrote(old_root):
    assert user_version(old_root) == 1
    assert any(text for text in legacy_tags(old_root).values())  # tags as ",a,b," text


def test_every_record_tag_search_and_regenerate_kwargs_survive(old_root):
    arch = Archive(old_root, settings=Settings())
    assert user_version(old_root) == schema.SCHEMA_VERSION
    records = arch.records(limit=None)
    assert [r.id for r in records] == [e["id"] for e in EXPECTED["records"]]
    for rec, want in zip(records, EXPECTED["records"], strict=True):
        got = {
            "id": rec.id, "prompt": rec.prompt, "negative_prompt": rec.negative_prompt,
            "model": rec.model, "seed": rec.seed, "lora": rec.lora, "lora_scale": rec.lora_scale,
            "batch_id": rec.batch_id, "tags": list(rec.tags),
            "reference_hash": rec.reference_hash, "path": str(rec.path.relative_to(arch.root)),
            "regenerate_kwargs": regenerate_kwargs(rec),
        }  # fmt: skip
        assert got == {**want, "regenerate_kwargs": as_replayed(want["regenerate_kwargs"])}
        assert not rec.missing and not rec.starred and rec.trashed_at is None
        assert rec.parent_id is None
        assert rec.thumbnail_bytes()[:3] == b"\xff\xd8\xff"
    searches = EXPECTED["searches"]
    assert [r.id for r in arch.search("fox")] == searches["fox"]
    assert [r.id for r in arch.search(tag="keep")] == searches["tag:keep"]
    assert [r.id for r in arch.search(batch="batch-1")] == searches["batch:batch-1"]
    ids = EXPECTED["ids"]
    # The word index was filled from the old rows; tags are in their table, as typed.
    assert [r.id for r in arch.search("lightho")] == [ids["a"]]
    assert [r.id for r in arch.search("猫")] == [ids["c"]]
    assert [r.id for r in arch.search(tag='say "cheese"')] == [ids["a"]]
    assert arch.tags() == {"keep": 2, "red  blue": 1, 'say "cheese"': 1}
    assert arch.loras() == ["detail_tweaker"] and arch.models() == ["animagine"]
    assert set(legacy_tags(old_root).values()) == {""}  # moved, not copied


def test_the_first_releases_records_replay_the_same_request(old_root, sim):
    settings = Settings(selfhosted_url=sim.url, archive_dir=old_root)
    arch = Archive(old_root, settings=settings)
    for rec, want in zip(arch.records(limit=None), EXPECTED["records"], strict=True):
        first = dict(want["regenerate_kwargs"])
        if "reference" in first:
            images = arch.reference_images(rec.reference_hash)
            assert [hashlib.sha256(r).hexdigest() for r in images] == first["reference"]
            first["reference"] = images
        asked = build_request(**first)  # what the first release's replay asked for
        assert build_request(**rec.regenerate_kwargs()) == asked
        again = run(rec.aregenerate(settings=settings))
        assert again.request == asked and again.seed == rec.seed
        assert arch.get(again.id).parent_id == rec.id
    bodies = [r.json for r in sim.request_log if r.path == "/generate"]
    assert [b["lora_name"] for b in bodies] == [None, "detail_tweaker", None]
    assert [b["ip_adapter_scale"] for b in bodies] == [0.5, 0.7, 0.7]


def test_the_migrated_archive_takes_new_images_stars_and_tags(old_root):
    arch = Archive(old_root, settings=Settings())
    ids = EXPECTED["ids"]
    new = arch.save(make_generation("a new lighthouse"), tags=["fresh"])
    assert [r.id for r in arch.search("lighthouse")] == [new.id, ids["a"]]
    assert arch.get(ids["b"]).star().tag("another, with a comma").tags == (
        "red  blue",
        "another, with a comma",
    )
    assert len(arch) == 4 and arch.reindex() == 0


def test_migrating_twice_or_after_the_old_release_wrote_again_is_harmless(old_root):
    Archive(old_root, settings=Settings()).close()
    Archive(old_root, settings=Settings()).close()  # again: nothing to do
    # The first release opened the folder again: it resets the version and writes a row
    # with its tags as text (the insert trigger it does not know of fills the word index).
    conn = sqlite3.connect(old_root / "index.sqlite")
    with conn:
        row = conn.execute("SELECT * FROM generations LIMIT 1").fetchone()
        names = [d[0] for d in conn.execute("SELECT * FROM generations LIMIT 1").description]
        values = dict(zip(names, row, strict=True))
        values.update(id="20990101-000000-0ld0ld00", prompt="written by the old release",
                      tags=",old tag,keep,", path="images/x/none.png")  # fmt: skip
        v1 = [c for c in names if c not in ("seq", "starred", "trashed_at", "parent_id")]
        conn.execute(
            f"INSERT INTO generations ({', '.join(v1)}) VALUES ({', '.join('?' * len(v1))})",
            [values[c] for c in v1],
        )
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    arch = Archive(old_root, settings=Settings())
    assert user_version(old_root) == schema.SCHEMA_VERSION
    assert arch.get("20990101-000000-0ld0ld00").tags == ("old tag", "keep")
    assert arch.tags() == {"keep": 3, "old tag": 1, "red  blue": 1, 'say "cheese"': 1}
    assert [r.id for r in arch.search("written old")] == ["20990101-000000-0ld0ld00"]
    assert len(arch.search(trashed=None, limit=None)) == 4


def test_a_migration_that_fails_halfway_leaves_the_old_index_as_it_was(old_root, monkeypatch):
    before = legacy_tags(old_root)

    def disk_full(conn):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(schema, "_fill_words", disk_full)
    with pytest.raises(ArchiveError, match="full"):
        Archive(old_root, settings=Settings())
    assert user_version(old_root) == 1 and legacy_tags(old_root) == before
    with sqlite3.connect(old_root / "index.sqlite") as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(generations)")}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "starred" not in columns and "tags" not in tables  # rolled back, all of it
    monkeypatch.undo()
    arch = Archive(old_root, settings=Settings())
    assert [r.id for r in arch.search(tag="keep")] == EXPECTED["searches"]["tag:keep"]
