"""What the archive does after a failure between file and row, or a process killed mid-write.

A retry adds the missing row to the file already written (never a second
copy), ``reindex`` never makes two rows for one image, and a temporary file
left by a dead process is recovered if it is a whole image, removed if not.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import sqlite3
from pathlib import Path

import pytest

import pixery_widgets as px
from pixery_widgets.archive import Archive, index
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError
from tests.test_archive import make_generation
from tests.test_no_loss import assert_archive_consistent


def run(coro):
    return asyncio.run(coro)


def png_files(root: Path) -> list[Path]:
    return sorted((root / "images").rglob("*.png"))


def prompts_indexed(archive: Archive) -> dict[str, int]:
    return dict(collections.Counter(r.prompt for r in archive.search(trashed=None, limit=None)))


# -- a retry after the row could not be added ----------------------------------------------


def test_a_retry_after_the_index_was_locked_adds_rows_not_second_copies(sim, tmp_path, monkeypatch):
    monkeypatch.setattr(index, "BUSY_TIMEOUT", 0.2)
    root = tmp_path / "arch"
    settings = Settings(selfhosted_url=sim.url, archive_dir=root)
    archive = Archive(root, settings=settings)
    other = sqlite3.connect(root / "index.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock meanwhile
    try:
        batch = run(
            px.arun_batch(
                ["locked a", "locked b"], seeds=[1], settings=settings, archive=archive,
                progress=False,
            )
        )  # fmt: skip
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(batch.failed) == 2 and all(f.generation is not None for f in batch.failed)
    assert "locked" in str(batch.failed[0].error)
    assert len(png_files(root)) == 2 and len(archive) == 0  # the files are there, no rows

    drawn = sum(r.path == "/generate" for r in sim.request_log)
    batch.retry_failed(progress=False)
    assert sum(r.path == "/generate" for r in sim.request_log) == drawn
    assert batch.ok
    assert prompts_indexed(archive) == {"locked a": 1, "locked b": 1}
    assert len(png_files(root)) == 2  # the retry reused them
    assert {g.path for g in batch.generations} == set(png_files(root))
    assert archive.reindex() == 0
    assert prompts_indexed(archive) == {"locked a": 1, "locked b": 1}
    assert_archive_consistent(root)


def test_retries_while_the_disk_is_full_between_file_and_row_never_write_twice(
    tmp_path, monkeypatch
):
    archive = Archive(tmp_path / "arch", settings=Settings())
    real_insert = Archive._insert
    budget = {"rows": 0}

    def nearly_full(self, *args, **kwargs):
        if budget["rows"] <= 0:
            raise ArchiveError("Could not add the image: the disk is full.")
        budget["rows"] -= 1
        return real_insert(self, *args, **kwargs)

    monkeypatch.setattr(Archive, "_insert", nearly_full)
    pending = [make_generation(f"full {n}", n) for n in range(8)]
    for attempt in range(20):
        budget["rows"] = attempt % 2  # now and then one row fits
        still = []
        for g in pending:
            try:
                archive.save(g, batch_id="b")
            except ArchiveError as exc:
                assert exc.generation is g
                still.append(g)
        pending = still
    budget["rows"] = 100
    for g in pending:
        archive.save(g, batch_id="b")
    assert prompts_indexed(archive) == {f"full {n}": 1 for n in range(8)}
    assert len(png_files(archive.root)) == 8
    assert archive.reindex() == 0 and len(archive) == 8
    assert_archive_consistent(archive.root)


def test_reindex_after_the_failure_then_a_retry_still_make_one_row(tmp_path, monkeypatch):
    archive = Archive(tmp_path / "arch", settings=Settings())
    real_insert = Archive._insert

    def locked(self, *args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Archive, "_insert", locked)
    g = make_generation("recover then retry")
    with pytest.raises(ArchiveError, match="reindex"):
        archive.save(g)
    monkeypatch.setattr(Archive, "_insert", real_insert)
    assert archive.reindex() == 1  # as the message says
    rec = archive.save(g)  # and then the retry
    assert rec.path == g.path and len(archive) == 1 and len(png_files(archive.root)) == 1


def test_reindex_makes_one_row_per_image_whatever_the_file_names(tmp_path):
    archive = Archive(tmp_path / "arch", settings=Settings())
    rec = archive.save(make_generation("only once"))
    archive.flush()
    # A copy under a name that is not its id (renamed or copied by hand).
    shutil.copy(rec.path, rec.path.with_name("my favourite.png"))
    # The first release's retry: the same image written again under a new id, no row.
    g = make_generation("written twice")
    first = archive.save(g, batch_id="b")
    archive._save(g, batch_id="b", tags=(), parent_id=None)  # bypasses the retry check
    (second,) = [p for p in png_files(archive.root) if first.id not in p.name and "_" in p.name
                 and p.name.split("_")[0] not in (rec.id,)]  # fmt: skip
    with archive._index.write() as conn:
        conn.execute("DELETE FROM generations WHERE path LIKE ?", (f"%{second.name}",))
    assert len(archive) == 2
    assert archive.reindex() == 0
    assert prompts_indexed(archive) == {"only once": 1, "written twice": 1}
    assert archive.reindex() == 0
    assert_archive_consistent(archive.root)
    moved = sorted(p.name for p in (archive.root / "duplicates").iterdir())
    assert moved == sorted(["my favourite.png", second.name])  # kept aside, not deleted
