"""What the archive does after a failure between file and row, or a process killed mid-write.

A retry adds the missing row to the file already written (never a second
copy), ``reindex`` never makes two rows for one image, and a temporary file
left by a dead process is recovered if it is a whole image, removed if not.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
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


# -- a process killed while writing ----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pixery_widgets.archive import Archive
    from pixery_widgets.core.config import Settings
    from tests.test_archive import make_generation

    root, mode = sys.argv[1], sys.argv[2]
    real_replace = os.replace

    def stall():
        print("stalled", flush=True)
        time.sleep(120)

    def half_writev(fd, parts):  # the file's first half reaches the disk, then the kill
        data = b"".join(bytes(part) for part in parts)
        os.write(fd, data[: len(data) // 2])
        stall()

    if mode == "half":
        os.writev = half_writev
    else:  # the whole file written, killed before the rename
        os.replace = lambda src, dst: stall() if str(src).endswith(".tmp") else real_replace(src, dst)
    Archive(root, settings=Settings()).save(make_generation("killed while saving", 5))
    """
)


def kill_while_saving(root: Path, mode: str) -> Path:
    """Run a process that saves one image, kill -9 it mid-write; the leftover it left."""
    Archive(root, settings=Settings()).close()  # the index exists before the writer starts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stalled"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    (leftover,) = (root / "images").rglob(".*.tmp")
    assert f".{proc.pid}-" in leftover.name
    past = time.time() - 60  # a minute later: the pid is gone and the file is old
    os.utime(leftover, (past, past))
    return leftover


def test_a_half_written_file_of_a_killed_process_is_removed_when_the_archive_opens(tmp_path):
    root = tmp_path / "arch"
    leftover = kill_while_saving(root, "half")
    assert leftover.stat().st_size > 0
    archive = Archive(root, settings=Settings())
    archive.flush()  # the recovery runs on the archive's background thread
    assert not leftover.exists() and png_files(root) == [] and len(archive) == 0
    assert_archive_consistent(root)


def test_a_whole_file_of_a_killed_process_is_recovered_and_indexed_when_the_archive_opens(
    tmp_path,
):
    root = tmp_path / "arch"
    leftover = kill_while_saving(root, "whole")
    archive = Archive(root, settings=Settings())
    archive.flush()
    assert not leftover.exists()
    (rec,) = archive.records()
    assert rec.prompt == "killed while saving" and rec.seed == 5
    assert rec.path == leftover.parent / leftover.name[1:].rsplit(".", 2)[0]
    assert_archive_consistent(root)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_crafted_leftovers_whole_recovered_broken_removed_live_or_fresh_untouched(tmp_path):
    archive = Archive(tmp_path / "arch", settings=Settings())
    model = archive.save(make_generation("a model save", 1))
    whole = model.path.read_bytes()
    with archive._index.write() as conn:  # its row goes: it becomes the content of leftovers
        conn.execute("DELETE FROM generations")
    model.path.unlink()
    day = model.path.parent
    pid, old = dead_pid(), time.time() - 60

    def leftover(folder: Path, final: str, data: bytes, *, of: int = pid, at: float = old):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".{final}.{of}-3.tmp"
        path.write_bytes(data)
        os.utime(path, (at, at))
        return path

    recovered = leftover(day, model.path.name, whole)
    broken = [
        leftover(day, "20250101-000000-00000001_animagine_s1.png", b""),
        leftover(day, "20250101-000000-00000002_animagine_s1.png", whole[: len(whole) // 2]),
        leftover(day, "20250101-000000-00000003_animagine_s1.png", whole[:-12]),  # no IEND
        leftover(day, "20250101-000000-00000004_animagine_s1.png", _without_pixery(whole)),
        leftover(archive.root / "thumbs" / day.name, "x.jpg", b"\xff\xd8\xff"),
        leftover(archive.root / "references" / "abc", "0.png", whole),
    ]
    untouched = [
        leftover(day, "20250101-000000-00000005_animagine_s1.png", whole, of=os.getpid()),
        leftover(day, "20250101-000000-00000006_animagine_s1.png", whole, at=time.time()),
        day / ".DS_Store",
    ]
    untouched[-1].write_bytes(b"not ours")
    fresh = Archive(archive.root, settings=Settings())
    fresh.flush()
    assert not recovered.exists() and model.path.is_file()
    assert [r.id for r in fresh.records()] == [model.id]
    assert [p for p in broken if p.exists()] == []
    assert [p for p in untouched if not p.exists()] == []
    # reindex() recovers too, once the writer is gone for good.
    live, young = untouched[0], untouched[1]
    later = live.with_name(live.name.replace(f".{os.getpid()}-", f".{pid}-"))
    live.rename(later)
    for p in (later, young):
        os.utime(p, (old, old))
    assert fresh.reindex() == 0  # copies of the same image: set aside, not indexed twice
    assert len(fresh) == 1 and list(day.glob(".*.tmp")) == []


def _without_pixery(png: bytes) -> bytes:
    from pixery_widgets.archive import add_text_chunks

    return add_text_chunks(png, {"pixery": "not json"})
