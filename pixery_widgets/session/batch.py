"""A batch: many prompts × seeds × models, scheduled per back end, every image kept.

``Batch`` holds the jobs and their results in input order, whatever order images
arrive in; shows them as a grid of thumbnails; retries and cancels. A sweep's
``vary=`` axes nest between seed and model (``session.sweep``); ``batch.grid()``
draws them (``session.sheet``). How it plans is in ``batch_plan``, how it runs in
``batch_run``, the entry points (``run_batch`` and twins) in ``batch_api``.

Cancelling (``batch.cancel()``, cancelling the awaiting task, or interrupting
the kernel during ``run_batch``) stops queued jobs and cancels those in
flight; images that arrived stay (they are archived as they arrive). Jobs that
did not finish are in ``.failed`` with reason ``"cancelled"``, so
``retry_failed()`` resumes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..archive import Archive
from ..archive.files import thumbnail
from ..core.config import Settings, load_settings
from ..core.observers import Observers
from ..core.tasks import spawn
from ..core.types import Generation, caption_line
from .batch_run import BatchRun, run_interruptible
from .jobs import Job, JobFailure, Result
from .progress import ProgressSnapshot
from .sweep import Sweep

if TYPE_CHECKING:
    from PIL import Image

    from .sheet import ContactSheet

__all__ = ["GRID_THUMB_BYTES", "Batch", "Job", "JobFailure"]

#: Most thumbnail bytes a batch's grid embeds (a saved notebook keeps them, as base64):
#: some 300 of the simulator's drawings, 150 of grainy photographs. A bigger batch shows
#: its first images and says so; every image stays in ``.generations`` and the archive.
GRID_THUMB_BYTES = 1_000_000
#: What a thumbnail not made yet is counted as (they are 3–7 KB).
_THUMB_GUESS = 8_000


#: Batches started in the background, kept referenced until they end.
_BACKGROUND: set[asyncio.Task[Any]] = set()


def _new_batch_id() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Batch(BatchRun):
    """The jobs of a batch and their results, in input order.

    Shows as a grid of thumbnails in a notebook. ``await batch`` (or
    ``batch.wait()``) waits for a batch started with ``start_batch``.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        params: Mapping[str, Any],
        settings: Settings,
        settings_given: bool,
        archive: Archive | None,
        concurrency: int | Mapping[str, int] | None,
        estimated_cost_usd: float,
    ) -> None:
        self.id = _new_batch_id()
        self.jobs: tuple[Job, ...] = tuple(jobs)
        self.results: list[Result] = [None] * len(self.jobs)
        self.archive = archive
        self.estimated_cost_usd = estimated_cost_usd
        self._params = dict(params)
        self._settings = settings
        self._settings_given = settings_given
        self._concurrency = concurrency
        self._thumbs: dict[int, bytes] = {}
        self._observers: Observers[[ProgressSnapshot]] = Observers()
        self._workers: list[asyncio.Task[None]] = []
        self._keepers: set[asyncio.Task[None]] = set()
        self._running: set[int] = set()
        self._run_indices: list[int] = []
        self._arrivals: list[int] = []
        self._started = 0.0
        self._ended: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[Any] | None = None
        self._cancel_requested = False
        self._active = False
        self._reporter: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        #: Its axes and where each job sits on them (set by ``plan_batch``).
        self.sweep: Sweep | None = None
        #: Job index → the URL of the server that drew it (a pool's batches only).
        self.server_of: dict[int, str] = {}

    # -- what it holds ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def params(self) -> Mapping[str, Any]:
        """The checked request keywords every job shares (a sweep's cells override some)."""
        return MappingProxyType(self._params)

    @property
    def settings(self) -> Settings:
        """The settings it runs with (re-read by ``retry_failed`` unless they were given)."""
        return self._settings

    @property
    def thumbnails(self) -> Mapping[int, bytes]:
        """The grid's thumbnails made so far, by job index (the contact sheet reuses them)."""
        return MappingProxyType(self._thumbs)

    @property
    def cancel_requested(self) -> bool:
        """``cancel()`` was called and the run has not ended yet."""
        return self._cancel_requested

    @property
    def generations(self) -> list[Generation]:
        """The images that arrived and were kept, in input order."""
        return [r for r in self.results if isinstance(r, Generation)]

    @property
    def images(self) -> list[Image.Image]:
        return [g.image for g in self.generations]

    @property
    def failed(self) -> list[JobFailure]:
        return [r for r in self.results if isinstance(r, JobFailure)]

    @property
    def running(self) -> bool:
        """Started and not yet settled."""
        return self._active or (self._runner is not None and not self._runner.done())

    @property
    def done(self) -> bool:
        """Every job has a result (an image or a failure)."""
        return not self.running and all(r is not None for r in self.results)

    @property
    def ok(self) -> bool:
        """Every job gave an image (archived, unless the batch runs with ``archive=False``)."""
        return all(isinstance(r, Generation) for r in self.results)

    @property
    def cost_usd(self) -> float:
        """What the images that arrived cost (including any that could not be archived)."""
        total = 0.0
        for r in self.results:
            if isinstance(r, Generation):
                total += r.cost_usd
            elif isinstance(r, JobFailure) and r.generation is not None:
                total += r.generation.cost_usd
        return total

    @property
    def per_server(self) -> dict[str, int]:
        """Images each server of a pool drew in this batch, by its (masked) URL."""
        from .scheduler import tally

        return tally(self)

    def summary(self) -> str:
        done = len(self.generations)
        parts = [f"{done}/{len(self)} images"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.running:
            parts.append("running")
        parts.append(f"${self.cost_usd:.3f}")
        return " · ".join(parts)

    def __repr__(self) -> str:
        return f"Batch(id={self.id!r}, {self.summary()})"

    # -- control ----------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop queued jobs and cancel those in flight; arrived images stay. Thread-safe."""
        loop = self._loop
        if loop is None or not self.running:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.call_soon(self._cancel_now)
        else:
            loop.call_soon_threadsafe(self._cancel_now)

    def _cancel_now(self) -> None:
        self._cancel_requested = True
        for worker in self._workers:
            worker.cancel()

    async def run_all(self, progress: Any = True) -> Batch:
        """Run every job and return when all are settled (``arun_batch``, ``run_batch``)."""
        await self._execute(range(len(self.jobs)), progress)
        return self

    def start(self, progress: Any = True) -> None:
        """Run every job in the background on the running loop (``start_batch``)."""
        self._loop = asyncio.get_running_loop()
        self._runner = spawn(self.run_all(progress), _BACKGROUND, name=f"pixery-batch-{self.id}")

    async def wait(self) -> Batch:
        """Wait until a batch started with ``start_batch`` has finished; returns it."""
        if self._runner is not None:
            await asyncio.shield(self._runner)
        return self

    def __await__(self) -> Any:
        return self.wait().__await__()

    async def aretry_failed(self, *, progress: Any = True) -> Batch:
        """Run the failed (and cancelled) jobs again, filling their results in place.

        An image that arrived but could not be archived is only saved again, not
        paid for again. Settings are re-read (the server's URL may have changed)
        unless the batch was given explicit ones.
        """
        indices = [i for i, r in enumerate(self.results) if isinstance(r, JobFailure)]
        if not indices:
            return self
        if not self._settings_given:
            self._settings = load_settings()
        await self._execute(indices, progress)
        return self

    def retry_failed(self, *, progress: Any = True) -> Batch:
        """Sync twin of ``aretry_failed``."""
        return run_interruptible(self, self.aretry_failed(progress=progress))

    def grid(
        self, x: str | None = None, y: str | None = None, z: str | None = None, **options: Any
    ) -> ContactSheet:
        """A labelled contact sheet of the images on two axes, one sheet per ``z`` value,
        archived beside the images; axes not named are those that vary. See ``session.sheet``."""
        from .sheet import contact_sheet

        return contact_sheet(self, x, y, z, **options)

    def _repr_html_(self) -> str:
        from ..core.grid import GridItem, grid_html

        items = []
        shown = self._grid_length()
        pairs = zip(self.jobs[:shown], self.results[:shown], strict=True)
        for i, (job, result) in enumerate(pairs):
            caption = job.label()
            short = job.prompt if len(job.prompt) <= 40 else job.prompt[:37] + "…"
            if isinstance(result, Generation):
                thumb = self._thumbs.get(i)
                if thumb is None:
                    try:
                        thumb = self._thumbs[i] = thumbnail(result.png_bytes)
                    except Exception:
                        thumb = None
                took = f"{result.elapsed_s:.1f} s"
                caption = f"#{i + 1} {caption_line(result.model, result.seed, took)}"
                items.append(GridItem(thumb, caption, title=job.prompt, footer=short))
            elif isinstance(result, JobFailure):
                items.append(
                    GridItem(
                        None, caption, title=result.error.message, footer=short, error=result.reason
                    )
                )
            else:
                running = i in self._running
                items.append(
                    GridItem(
                        None, caption, title=job.prompt, footer="running…" if running else short
                    )
                )
        where = f" · archived in {self.archive.root}" if self.archive is not None else ""
        cut = (
            f" · the first {shown} shown (every image is in .generations)"
            if shown < len(self.jobs)
            else ""
        )
        return grid_html(items, header=f"Batch {self.id}: {self.summary()}{where}{cut}")

    def _grid_length(self) -> int:
        """How many jobs, from the first, the grid shows: all of them, or as many as fit
        ``GRID_THUMB_BYTES`` of thumbnails (a saved notebook keeps every one it shows)."""
        used = 0
        for i, result in enumerate(self.results):
            if isinstance(result, Generation):
                used += len(self._thumbs.get(i) or b"") or _THUMB_GUESS
                if used > GRID_THUMB_BYTES:
                    return i
        return len(self.results)
