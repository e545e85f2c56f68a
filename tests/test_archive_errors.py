"""Every archive method raises only the package's errors, saying what to do.

A full disk is real here when the machine lets the test mount a tiny tmpfs
(root in a container); the same failure is also injected at the SQLite
connection for every method, so the guarantee is checked everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from pixery_widgets.archive import Archive
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError
from tests.test_archive import make_generation


class FullDisk:
    """A connection on a disk with no space left: every statement fails as SQLite does."""

    in_transaction = False

    def execute(self, *args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    executemany = execute

    def close(self) -> None:
        pass


def _calls(arch: Archive, rec_id: str):
    return {
        "save": lambda: arch.save(make_generation("new")),
        "tag": lambda: arch.tag(rec_id, "x"),
        "untag": lambda: arch.untag(rec_id, "x"),
        "star": lambda: arch.star(rec_id),
        "trash": lambda: arch.trash(rec_id),
        "empty_trash": lambda: arch.empty_trash(),
        "forget_missing": lambda: arch.forget_missing(),
        "reindex": lambda: arch.reindex(),
        "get": lambda: arch.get(rec_id),
        "search": lambda: arch.search("fox", tag="x"),
        "count": lambda: arch.count(starred=True),
        "tags": lambda: arch.tags(),
        "models": lambda: arch.models(),
        "loras": lambda: arch.loras(),
        "len": lambda: len(arch),
    }


METHODS = list(_calls(None, "").keys())  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_an_sqlite_failure_in_any_method_is_an_archive_error_saying_what_to_do(tmp_path, method):
    arch = Archive(tmp_path / "arch", settings=Settings())
    rec = arch.save(make_generation())
    real = arch._index._conn
    arch._index._conn = FullDisk()  # type: ignore[assignment]
    try:
        with pytest.raises(ArchiveError) as info:
            _calls(arch, rec.id)[method]()
    finally:
        arch._index._conn = real
    assert "full; free some space, then try again" in str(info.value)


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "1m"):
    where.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_on_a_really_full_disk_tag_reindex_and_save_say_the_disk_is_full(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        arch = Archive(disk / "arch", settings=Settings())
        recs = [arch.save(make_generation(f"fox {n}", n)) for n in range(3)]
        arch.flush()
        with arch._index.write() as conn:  # a file without its row, for reindex to find
            conn.execute("DELETE FROM generations WHERE id = ?", (recs[0].id,))
        filler = fill(disk)
        errors = []
        for call in (
            lambda: arch.tag(recs[1].id, *[f"tag {n}" * 10 for n in range(200)]),
            arch.reindex,
            lambda: arch.save(make_generation("no room")),
        ):
            with pytest.raises(ArchiveError) as info:
                call()
            errors.append(str(info.value))
        assert all("full" in e or "No space left" in e for e in errors), errors
        assert "free some space" in errors[0] and "free some space" in errors[1]
        filler.unlink()
        assert arch.reindex() == 1 and len(arch) == 3  # space again: all is well
        assert arch.tag(recs[1].id, "room").tags == ("room",)
        arch.close()


def test_empty_trash_keeps_the_row_of_a_file_it_cannot_delete(tmp_path, monkeypatch):
    arch = Archive(tmp_path / "arch", settings=Settings())
    stuck = arch.save(make_generation("stuck")).trash()
    gone = arch.save(make_generation("gone")).trash()
    real_unlink = Path.unlink

    def unlink(self, *args, **kwargs):
        if self == stuck.path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    result = arch.empty_trash()
    assert result.count == 1 and "1 image could not be deleted" in str(result)
    assert "Permission denied" in str(result)
    assert [r.id for r in arch.search(trashed=True)] == [stuck.id]
    assert not gone.path.exists() and stuck.path.is_file()


def test_an_archive_that_cannot_be_opened_says_where_and_why(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ArchiveError, match="Could not open the image archive"):
        Archive(blocker, settings=Settings())
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "index.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(ArchiveError, match="Could not open"):
        Archive(damaged, settings=Settings())


def test_reading_a_record_whose_file_is_unreadable_is_an_archive_error(tmp_path):
    arch = Archive(tmp_path / "arch", settings=Settings())
    rec = arch.save(make_generation())
    rec.path.unlink()
    rec.path.mkdir()  # a folder where the file was: reading raises IsADirectoryError
    with pytest.raises(ArchiveError, match="Could not read"):
        rec.png_bytes()
    with pytest.raises(ArchiveError):
        rec.image  # noqa: B018
    assert rec.missing


def test_a_word_search_while_another_program_holds_the_lock_finds_what_is_indexed(
    tmp_path, monkeypatch
):
    from pixery_widgets.archive import finder

    monkeypatch.setattr(finder, "WORDS_WAIT", 0.05)
    arch = Archive(tmp_path / "arch", settings=Settings())
    first = arch.save(make_generation("a lighthouse"))
    assert [r.id for r in arch.search("lighthouse")] == [first.id]
    other = sqlite3.connect(arch.db_path, isolation_level=None)
    try:  # another program adds a row, then holds the write lock
        row = other.execute("SELECT * FROM generations").fetchone()
        names = [d[0] for d in other.execute("SELECT * FROM generations").description]
        values = dict(zip(names, row, strict=True), id="other-1", seq=None, prompt="lighthouse 2")
        other.execute(
            f"INSERT INTO generations ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [values[n] for n in names],
        )
        other.execute("BEGIN IMMEDIATE")
        assert [r.id for r in arch.search("lighthouse")] == [first.id]  # no error, no wait
        assert arch.count("lighthouse") == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert {r.id for r in arch.search("lighthouse")} == {first.id, "other-1"}
