"""No loss under death: a server killed mid-batch, a kernel interrupt, a disk that fills up.

Whatever happens, every image that arrived is either complete on disk *and* in
the index, or not in the archive at all (and then kept in memory for
``retry_failed()``): never a temporary file left behind, never a truncated PNG,
never an index row without its file. ``assert_archive_consistent`` scans the
archive directory for exactly that; the other fault tests use it too.

What test_batch_sim.py and test_archive.py already pin (a kill after five
images, ``batch.cancel()``, a failing ``os.replace``) is not repeated here.
"""

from __future__ import annotations

import asyncio
import errno
import io
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import pixery_widgets as px
from pixery_widgets.archive import Archive, read_text_chunks, registry, store
from pixery_widgets.archive import files as archive_files
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError, ConnectionFailedError
from pixery_widgets.core.types import Generation
from pixery_widgets.session.batch import Batch

# -- the scan ------------------------------------------------------------------------------


def index_rows(root: Path) -> dict[str, str]:
    """id → relative path of every row in the archive's index (read-only)."""
    db = root / "index.sqlite"
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT id, path FROM generations"))
    finally:
        conn.close()


def assert_archive_consistent(root: Path) -> set[str]:
    """Every PNG decodes whole and has its row, every row has its file, no temp file is left.

    Returns the ids archived.
    """
    for archive in registry.open_archives():  # finish background work first
        flush = getattr(archive, "flush", None)
        if flush is not None and archive.root == root.resolve():
            flush()
    leftovers = [
        p
        for p in root.rglob("*")
        if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith("."))
    ]
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    files: dict[str, Path] = {}
    for path in sorted((root / "images").rglob("*.png")) if (root / "images").exists() else ():
        with Image.open(path) as img:
            img.load()  # a truncated PNG raises here
        info = json.loads(read_text_chunks(path.read_bytes())["pixery"])
        assert path.name.startswith(info["id"] + "_"), path
        files[info["id"]] = path
    rows = index_rows(root)
    for gen_id, rel in rows.items():
        assert (root / rel).is_file(), f"index row {gen_id} has no file ({rel})"
    assert set(rows) == set(files), (
        f"rows without files: {set(rows) - set(files)}; files without rows: {set(files) - set(rows)}"
    )
    return set(files)


def assert_batch_kept(batch: Batch, root: Path) -> None:
    """The batch's images are exactly what the archive holds for it; the rest can be retried."""
    archived = assert_archive_consistent(root)
    rows = index_rows(root)
    for g in batch.generations:
        assert g.id in archived and g.path == root / rows[g.id], g
    for failure in batch.failed:
        if failure.generation is not None:  # arrived, not archived: kept in memory for a retry
            assert failure.generation.id is None or failure.generation.id in archived


def run(coro):
    return asyncio.run(coro)


def generate_calls(sim) -> int:
    return sum(r.path == "/generate" for r in sim.request_log)


# -- the server dies while an image is being drawn ----------------------------------------


def test_a_server_killed_while_drawing_leaves_a_consistent_archive_and_retry_completes(
    sim_factory, tmp_path
):
    sim = sim_factory(gen_seconds=0.15)
    root = tmp_path / "archive"
    settings = Settings(selfhosted_url=sim.url, archive_dir=root)
    killed = threading.Event()

    def kill_while_the_third_is_drawn(snapshot) -> None:
        if snapshot.done >= 2 and snapshot.running and not killed.is_set():
            killed.set()
            threading.Timer(0.05, sim.kill).start()  # mid-generation, from outside the loop

    batch = run(
        px.arun_batch(
            [f"ember {n}" for n in range(6)],
            seeds=[3],
            settings=settings,
            progress=kill_while_the_third_is_drawn,
        )
    )
    assert 2 <= len(batch.generations) < 6
    for failure in batch.failed:
        assert isinstance(failure.error, ConnectionFailedError)
        assert failure.reason in ("connection dropped", "connection refused")
    assert_batch_kept(batch, root)

    sim.start()  # the same port, as a rebooted box
    batch.retry_failed(progress=False)
    assert batch.ok
    assert_batch_kept(batch, root)
    assert len(index_rows(root)) == 6


# -- the kernel is interrupted -----------------------------------------------------------


def test_an_interrupt_landing_while_an_image_is_handed_to_the_archive_loses_nothing(
    sim, tmp_path, monkeypatch
):
    """A kernel interrupt raises KeyboardInterrupt wherever the main thread is, even in the
    step that hands an arrived image to the archive. That image must still end up archived
    or be marked for ``retry_failed()``, never shown as kept while missing from disk."""
    root = tmp_path / "archive"
    settings = Settings(selfhosted_url=sim.url, archive_dir=root)
    real_asave = Archive.asave
    saves = {"n": 0}

    async def interrupted_on_the_second(self, generation, **kwargs):
        saves["n"] += 1
        if saves["n"] == 2:
            raise KeyboardInterrupt  # where SIGINT landed: before the save reached its thread
        return await real_asave(self, generation, **kwargs)

    monkeypatch.setattr(Archive, "asave", interrupted_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        px.run_batch([f"interrupt {n}" for n in range(5)], settings=settings, progress=False)
    batch = px.last_batch()
    assert batch is not None and not batch.running
    assert_batch_kept(batch, root)
    assert len(batch.generations) + len(batch.failed) == 5
    # The image whose hand-over was hit is archived after all, or held for a retry.
    held = [f.generation for f in batch.failed if f.generation is not None]
    arrived = {g.prompt for g in [*batch.generations, *held]}
    assert {"interrupt 0", "interrupt 1"} <= arrived

    monkeypatch.setattr(Archive, "asave", real_asave)
    calls = generate_calls(sim)
    never_drawn = sum(f.generation is None for f in batch.failed)
    batch.retry_failed(progress=False)
    assert batch.ok
    assert generate_calls(sim) == calls + never_drawn  # the held image is saved, not redrawn
    assert_batch_kept(batch, root)
    assert {g.id for g in batch.generations} == set(index_rows(root))


def test_a_cancelled_batch_task_settles_its_saves_before_returning(sim, tmp_path, monkeypatch):
    """The kernel's interrupt cancels the batch task; saves already started are awaited,
    so when the cancellation arrives at the caller every kept image is on disk."""
    root = tmp_path / "archive"
    settings = Settings(selfhosted_url=sim.url, archive_dir=root)
    real_write = store.write_atomic
    writing = threading.Event()

    def slow_write(path: Path, data: bytes, **kwargs: Any) -> None:
        if path.suffix == ".png":
            writing.set()
            threading.Event().wait(0.3)  # a slow disk
        real_write(path, data, **kwargs)

    monkeypatch.setattr(store, "write_atomic", slow_write)

    async def scenario():
        task = asyncio.create_task(
            px.arun_batch([f"slow disk {n}" for n in range(4)], settings=settings, progress=False)
        )
        await asyncio.wait_for(asyncio.to_thread(writing.wait), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return px.last_batch()

    batch = run(scenario())
    assert len(batch.generations) >= 1
    assert all(g.path is not None and g.path.is_file() for g in batch.generations)
    assert_batch_kept(batch, root)


def test_an_image_decoding_when_agenerate_is_cancelled_is_still_counted_and_archived(
    sim, tmp_path, monkeypatch
):
    """The kernel's interrupt lands after the answer arrived, while the worker thread
    decodes it: the image is paid for, so it is archived and counted all the same."""
    from pixery_widgets.providers import _selfhosted_answers
    from pixery_widgets.session.ledger import LEDGER

    root = tmp_path / "archive"
    settings = Settings(selfhosted_url=sim.url, archive_dir=root)
    decoding, go_on = threading.Event(), threading.Event()
    real_parse = _selfhosted_answers.parse_generate

    def slow_parse(data: Any) -> Any:
        decoding.set()
        go_on.wait(10)
        return real_parse(data)

    monkeypatch.setattr(_selfhosted_answers, "parse_generate", slow_parse)
    images_before = LEDGER.images

    async def scenario() -> None:
        task = asyncio.create_task(px.agenerate("interrupted", seed=4, settings=settings))
        await asyncio.to_thread(decoding.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go_on.set()
        for _ in range(500):  # the worker finishes on its own; the loop takes its count
            if LEDGER.images > images_before and index_rows(root):
                break
            await asyncio.sleep(0.01)

    run(scenario())
    assert LEDGER.images == images_before + 1
    archived = assert_archive_consistent(root)
    assert len(archived) == 1


# -- the disk fills up mid-write ----------------------------------------------------------


class _FullDisk:
    """Stands in for ``os`` inside the archive module: writes stop after ``budget`` bytes.

    The bytes that fit are really written (a half-written temporary file exists at the
    moment of failure), then ``OSError(ENOSPC)``, as on a real full disk.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        return self.writev(fd, [data])

    def writev(self, fd: int, parts: Any) -> int:
        data = b"".join(bytes(part) for part in parts)
        room = max(0, self.budget)
        if room:
            os.write(fd, data[:room])  # the partial file really is on disk
        self.budget -= min(room, len(data))
        if room < len(data):
            self.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)


def test_a_disk_that_fills_up_mid_file_leaves_no_partial_png(sim, tmp_path, monkeypatch):
    root = tmp_path / "archive"
    settings = Settings(selfhosted_url=sim.url, archive_dir=root)
    first = run(px.agenerate("before the disk filled", seed=1, settings=settings, archive=root))
    size = first.path.stat().st_size
    disk = _FullDisk(budget=size * 2 + size // 2)  # room for two and a half images (+ thumbs)
    monkeypatch.setattr(archive_files, "os", disk)

    batch = run(
        px.arun_batch(
            [f"filling {n}" for n in range(5)], seeds=[2], settings=settings, progress=False
        )
    )
    assert disk.failures >= 1
    assert 1 <= len(batch.generations) < 5
    for failure in batch.failed:
        assert isinstance(failure.error, ArchiveError)
        assert "No space left on device" in str(failure.error)
        assert "still in memory" in str(failure.error)
        assert failure.generation is not None and failure.generation.path is None
    assert_batch_kept(batch, root)
    assert first.id in index_rows(root) and first.path.is_file()

    monkeypatch.setattr(archive_files, "os", os)  # space freed
    calls = generate_calls(sim)
    batch.retry_failed(progress=False)
    assert generate_calls(sim) == calls  # the images were kept in memory: nothing paid twice
    assert batch.ok
    assert_batch_kept(batch, root)
    assert len(index_rows(root)) == 6


def test_a_write_failing_at_every_byte_count_never_leaves_a_partial_file(tmp_path, monkeypatch):
    """One image, the disk full after 0, 1, 100, ... bytes: the archive is always whole."""
    root = tmp_path / "archive"
    archive = Archive(root, settings=Settings())
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="PNG")
    saved = 0
    for budget in (0, 1, 100, 400, 700, 2_000, 10**9):
        g = Generation(
            png_bytes=buf.getvalue(),
            seed=budget,
            model="animagine",
            provider="selfhosted",
            params={"prompt": "x"},
            elapsed_s=0.1,
            cost_usd=0.0,
        )
        monkeypatch.setattr(archive_files, "os", _FullDisk(budget))
        try:
            archive.save(g)
        except ArchiveError as exc:
            assert exc.generation is g and g.path is None
            assert "No space left on device" in str(exc)
        else:
            assert g.path is not None and g.path.is_file()
            saved += 1
        getattr(archive, "flush", lambda: None)()  # background thumbnails, if any
        monkeypatch.setattr(archive_files, "os", os)
        assert_archive_consistent(root)
    assert 1 <= saved < 7 and len(index_rows(root)) == saved
