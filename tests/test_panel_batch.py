"""The panel's batch is read from the batch: arrival order, each image once archived,
failures apart from cancels, and a clock that stops when the run ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pixery_widgets.archive.store import Archive
from pixery_widgets.core.config import Settings
from pixery_widgets.session.batch_api import arun_batch, start_batch
from pixery_widgets.session.panel_batch import PanelBatch


def run(coro):
    return asyncio.run(coro)


class GatedArchive(Archive):
    """An archive whose first save waits until the test lets it go."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, settings=Settings())
        self.gate = asyncio.Event()
        self.saves = 0

    async def asave(self, generation, **kwargs):
        self.saves += 1
        if self.saves == 1:
            await self.gate.wait()
        return await super().asave(generation, **kwargs)


def test_images_are_handed_over_in_arrival_order_each_once_archived(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url)
    archive = GatedArchive(tmp_path / "archive")
    view = PanelBatch(3, redact=settings.redact)
    shown_while_held: list[list[int | None]] = []

    def on_progress() -> None:
        if not archive.gate.is_set() and view.batch is not None:
            shown_while_held.append([g.seed for g in view.images()])
            if len(view.batch.arrival_order) == 3:  # all drawn, the first still saving
                archive.gate.set()

    async def body() -> None:
        kwargs = {"settings": settings, "archive": archive}
        await view.run(
            start_batch, "a lighthouse", "animagine", [5, 6, 7], kwargs, on_progress=on_progress
        )

    run(body())
    assert shown_while_held and all(seeds == [] for seeds in shown_while_held)
    assert [g.seed for g in view.images()] == [5, 6, 7]
    assert all(g.path is not None and g.path.is_file() for g in view.images())
    assert view.batch is not None and view.batch.arrival_order == [0, 1, 2]
    assert view.note() is None and view.outcome() == ("done", None, None)


def test_a_cancel_is_counted_apart_from_failures(sim_factory, tmp_path):
    sim = sim_factory(gen_seconds=0.2)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "archive")
    view = PanelBatch(5, redact=settings.redact)

    def on_progress() -> None:
        if view.batch is not None and view.batch.arrival_order and view.batch.running:
            view.batch.cancel()

    async def body() -> None:
        await view.run(
            start_batch,
            "slow",
            "animagine",
            [1, 2, 3, 4, 5],
            {"settings": settings},
            on_progress=on_progress,
        )

    run(body())
    snap = view.snapshot(0.0)
    kept = len(view.images())
    assert snap.finished and snap.failed == 0 and snap.cancelled == 5 - kept >= 1
    assert snap.settled == snap.total == 5
    assert view.failures() == [] and view.failure_words() is None
    assert view.note() == f"Cancelled after {kept} of 5 images."
    assert view.outcome() == ("cancelled", None, "")
    assert f"{5 - kept} cancelled" in snap.summary() and "failed" not in snap.summary()


def test_a_batch_not_started_shows_the_count_asked_for_and_fails_in_words():
    view = PanelBatch(4, redact=str)
    snap = view.snapshot(1.5)
    assert (snap.total, snap.done, snap.elapsed_s) == (4, 0, 1.5)
    assert view.images() == [] and view.note() is None
    assert view.outcome(error="refused") == ("failed", "refused", None)
    assert view.outcome(cancelled=True) == ("cancelled", None, None)


def test_the_batch_clock_stops_when_its_run_ends(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "archive")

    async def body():
        batch = await arun_batch(["a", "b"], settings=settings, progress=False)
        first = batch.snapshot()
        await asyncio.sleep(0.05)
        return first, batch.snapshot()

    first, later = run(body())
    assert first.finished and first.elapsed_s > 0
    assert later.elapsed_s == first.elapsed_s  # the run is over: its time no longer grows
