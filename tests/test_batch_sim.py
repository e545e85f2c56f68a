"""Batches against the real simulator over loopback: order, a server dying halfway,
cancellation, a disk failing mid-batch, and the weight of a saved notebook."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import nbclient
import nbformat
import pytest

import pixery_widgets as px
from pixery_widgets.archive import Archive
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError, ConnectionFailedError


def run(coro):
    return asyncio.run(coro)


def generate_calls(sim) -> int:
    return sum(1 for r in sim.request_log if r.path == "/generate")


def assert_archived(batch, archive: Archive) -> None:
    """Every image of the batch is a file on disk with its row, and nothing else is indexed."""
    rows = {r.id: r for r in archive.search(batch=batch.id, limit=None)}
    assert set(rows) == {g.id for g in batch.generations}
    for g in batch.generations:
        assert g.path is not None and g.path.is_file()
        assert rows[g.id].path == g.path and rows[g.id].seed == g.seed


def test_twenty_jobs_with_two_seeds_per_prompt_complete_in_input_order(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    prompts = [f"lighthouse {n}" for n in range(10)]
    batch = run(px.arun_batch(prompts, seeds=[11, 22], settings=settings, progress=False))
    assert batch.ok and len(batch.generations) == 20 and batch.failed == []
    assert [(g.prompt, g.seed) for g in batch.generations] == [
        (p, s) for p in prompts for s in (11, 22)
    ]
    assert [j.index for j in batch.jobs] == list(range(20))
    assert_archived(batch, Archive(tmp_path, settings=settings))
    assert len(batch.images) == 20 and batch.images[0].size == (1024, 1024)


def test_killing_the_server_halfway_keeps_every_arrived_image_and_retry_completes(
    sim_factory, tmp_path
):
    sim = sim_factory(gen_seconds=0.05)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    prompts = [f"storm {n}" for n in range(10)]
    killer: list[threading.Thread] = []

    def kill_after_five(snapshot) -> None:
        if snapshot.done >= 5 and not killer:
            killer.append(threading.Thread(target=sim.kill, daemon=True))
            killer[0].start()

    async def scenario():
        batch = await px.arun_batch(prompts, seeds=[7], settings=settings, progress=kill_after_five)
        arrived = list(batch.generations)
        failures = list(batch.failed)
        await asyncio.to_thread(killer[0].join, 5)
        await asyncio.to_thread(sim.start)  # the same port: a rebooted server
        await batch.aretry_failed(progress=False)
        return batch, arrived, failures

    batch, arrived, failures = run(scenario())
    archive = Archive(tmp_path, settings=settings)

    assert 5 <= len(arrived) < 10
    assert len(failures) == 10 - len(arrived)
    for failure in failures:
        assert isinstance(failure.error, ConnectionFailedError)
        assert failure.reason in ("connection dropped", "connection refused")
        assert failure.generation is None
    for g in arrived:  # still the same objects, on disk and indexed
        assert g.path.is_file() and archive.get(g.id).path == g.path

    assert batch.ok and batch.failed == []
    assert [g.prompt for g in batch.generations] == prompts
    assert all(g in batch.generations for g in arrived)
    assert_archived(batch, archive)

    # The same seed reproduces identical bytes, before and after the restart.
    again = (
        run(px.agenerate(prompts[0], seed=7, settings=settings, archive=False)),
        run(px.agenerate(prompts[-1], seed=7, settings=settings, archive=False)),
    )
    assert again[0].png_bytes == batch.generations[0].png_bytes
    assert again[1].png_bytes == batch.generations[-1].png_bytes


def test_batch_cancel_keeps_finished_images_and_marks_the_rest_cancelled(sim_factory, tmp_path):
    sim = sim_factory(gen_seconds=0.05)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    prompts = [f"quiet {n}" for n in range(8)]

    async def scenario():
        batch = await px.start_batch(prompts, seeds=[1], settings=settings, progress=False)
        assert batch.running
        while len(batch.generations) < 3:
            await asyncio.sleep(0.005)
        batch.cancel()
        await batch
        finished, cancelled = list(batch.generations), list(batch.failed)
        calls = generate_calls(sim)
        await batch.aretry_failed(progress=False)
        return batch, finished, cancelled, calls

    batch, finished, cancelled, calls = run(scenario())
    assert 3 <= len(finished) < 8 and len(finished) + len(cancelled) == 8
    assert all(f.reason == "cancelled" for f in cancelled)
    assert calls < 8  # queued jobs were never sent
    assert batch.ok and [g.prompt for g in batch.generations] == prompts
    assert_archived(batch, Archive(tmp_path, settings=settings))


def test_cancelling_the_awaiting_task_keeps_finished_images(sim_factory, tmp_path):
    sim = sim_factory(gen_seconds=0.05)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    before = px.last_batch()

    async def scenario():
        task = asyncio.create_task(
            px.arun_batch([f"dune {n}" for n in range(8)], settings=settings, progress=False)
        )
        while (b := px.last_batch()) is before or len(b.generations) < 2:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return px.last_batch()

    batch = run(scenario())
    assert 2 <= len(batch.generations) < 8
    assert {f.reason for f in batch.failed} == {"cancelled"}
    assert len(batch.generations) + len(batch.failed) == 8 and not batch.running
    assert_archived(batch, Archive(tmp_path, settings=settings))


def test_kernel_interrupt_during_run_batch_keeps_finished_images(sim_factory, tmp_path):
    sim = sim_factory(gen_seconds=0.05)
    script = textwrap.dedent(
        f"""
        import _thread, json, threading, time
        from pathlib import Path
        import pixery_widgets as px
        from pixery_widgets.core.config import Settings

        settings = Settings(selfhosted_url={sim.url!r}, archive_dir=Path({str(tmp_path)!r}))

        def interrupt_after_three():
            while (b := px.last_batch()) is None or len(b.generations) < 3:
                time.sleep(0.002)
            _thread.interrupt_main()

        threading.Thread(target=interrupt_after_three, daemon=True).start()
        try:
            px.run_batch([f"interrupt {{n}}" for n in range(10)], settings=settings, progress=False)
            print(json.dumps({{"interrupted": False}}))
        except KeyboardInterrupt:
            b = px.last_batch()
            print(json.dumps({{
                "interrupted": True,
                "ids": [g.id for g in b.generations],
                "files": [g.path is not None and g.path.is_file() for g in b.generations],
                "reasons": sorted({{f.reason for f in b.failed}}),
                "settled": len(b.generations) + len(b.failed),
            }}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["interrupted"] is True
    assert 3 <= len(result["ids"]) < 10 and all(result["files"])
    assert result["reasons"] == ["cancelled"] and result["settled"] == 10
    assert "Interrupted:" in done.stderr and "retry_failed" in done.stderr
    rows = Archive(tmp_path, settings=Settings()).records(limit=None)
    assert {r.id for r in rows} == set(result["ids"])


def test_an_image_whose_save_was_never_scheduled_is_archived_before_the_run_ends(
    sim, tmp_path, monkeypatch
):
    # A kernel interrupt can land between "the image arrived" and "its save was
    # scheduled"; the end of the run sweeps such images into the archive.
    from pixery_widgets.session.batch import Batch

    real_keep_later = Batch._keep_later

    def lose_the_third(self, index, generation):
        if index != 2:
            real_keep_later(self, index, generation)

    monkeypatch.setattr(Batch, "_keep_later", lose_the_third)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = run(px.arun_batch([f"sweep {n}" for n in range(5)], settings=settings, progress=False))
    assert batch.ok and batch.generations[2].path.is_file()
    assert_archived(batch, Archive(tmp_path, settings=settings))


def test_a_failed_write_mid_batch_is_recorded_and_retry_saves_without_paying_again(
    sim, tmp_path, monkeypatch
):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    real_replace = os.replace
    image_writes = {"n": 0}
    lock = threading.Lock()

    def flaky_replace(src, dst):
        if Path(dst).suffix == ".png" and Path(dst).parent.parent.name == "images":
            with lock:
                image_writes["n"] += 1
                if image_writes["n"] == 3:
                    raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    prompts = [f"disk {n}" for n in range(6)]
    batch = run(px.arun_batch(prompts, seeds=[2], settings=settings, progress=False))
    archive = Archive(tmp_path, settings=settings)

    (failure,) = batch.failed
    assert isinstance(failure.error, ArchiveError)
    assert "No space left on device" in str(failure.error)
    assert failure.generation is not None and failure.generation.path is None
    assert len(batch.generations) == 5
    assert len(list((tmp_path / "images").rglob("*.png"))) == 5  # no partial file
    assert not [p for p in (tmp_path / "images").rglob("*") if p.name.endswith(".tmp")]
    assert_archived(batch, archive)

    monkeypatch.setattr(os, "replace", real_replace)
    calls = generate_calls(sim)
    batch.retry_failed(progress=False)
    assert generate_calls(sim) == calls  # the image was kept in memory, not requested again
    assert batch.ok and [g.prompt for g in batch.generations] == prompts
    assert_archived(batch, archive)


def test_an_unexpected_failure_to_save_holds_the_image_instead_of_calling_it_kept(
    sim, tmp_path, monkeypatch
):
    """Not only an ArchiveError: any failure of the save leaves the image in .failed,
    held for retry_failed(), never counted as archived."""
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    real_asave = Archive.asave
    calls = {"n": 0}

    async def buggy_asave(self, generation, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug in the save")
        return await real_asave(self, generation, **kwargs)

    monkeypatch.setattr(Archive, "asave", buggy_asave)
    batch = run(
        px.arun_batch([f"bug {n}" for n in range(3)], seeds=[2], settings=settings, progress=False)
    )
    (failure,) = batch.failed
    assert "Unexpected error: RuntimeError: a bug in the save" in str(failure.error)
    assert failure.generation is not None and failure.generation.path is None
    assert not batch.ok and len(batch.generations) == 2

    drawn = generate_calls(sim)
    batch.retry_failed(progress=False)
    assert generate_calls(sim) == drawn  # saved from memory, not drawn again
    assert batch.ok
    assert_archived(batch, Archive(tmp_path, settings=settings))


def test_a_model_comparison_runs_prompts_by_seeds_by_models(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = px.run_batch(
        ["a fox", "a whale"],
        model=["animagine", "pony", "noobai"],
        seeds=2,
        settings=settings,
        progress=False,
    )
    assert batch.ok and len(batch.generations) == 12
    rows = [(g.prompt, g.model) for g in batch.generations]
    assert rows[:3] == [("a fox", "animagine"), ("a fox", "pony"), ("a fox", "noobai")]
    seeds = [g.seed for g in batch.generations]
    assert seeds[0] == seeds[1] == seeds[2] and seeds[0] == batch.jobs[0].seed
    html = batch._repr_html_()
    assert html.count("<img") == 12 and "a whale" in html


def test_fifty_image_batch_adds_under_two_megabytes_to_a_saved_notebook(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)
    monkeypatch.setenv("PIXERY_ARCHIVE_DIR", str(tmp_path / "out"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import pixery_widgets as px\n"
            "batch = px.run_batch([f'saved notebook {n}' for n in range(50)], seeds=[1])\n"
            "assert batch.ok, batch.failed"
        ),
        nbformat.v4.new_code_cell("batch"),
    ]
    empty = len(nbformat.writes(nb).encode())
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    path = tmp_path / "batch.ipynb"
    nbformat.write(nb, path)
    added = path.stat().st_size - empty
    shown = nb.cells[1].outputs[0]["data"]
    assert "text/html" in shown and shown["text/html"].count("<img") == 50
    assert added < 2_000_000, f"the notebook grew by {added} bytes"
