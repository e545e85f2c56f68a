"""How a batch runs: a pool of workers per back end, 429 waits, archiving as images arrive.

Scheduling: each back end gets its own pool of workers, which take the next
job the moment they are free (no waves): one at a time for a self-hosted
server (it draws one image at a time; more would only queue there), four at a
time per cloud provider (``DEFAULT_CLOUD_CONCURRENCY``, per provider in
``CLOUD_CONCURRENCY``). The limits hold within one batch: two batches, or a
batch and the panel, on one server each have a request in flight. A worker hands each arrived
image to the archive and moves on at once, so the server never waits for a
disk. On a self-hosted server, jobs run grouped by model to avoid a checkpoint
switch between images; results still keep input order. Several self-hosted
servers (a pool) get one worker each from ``scheduler.py``, which also says how
it keeps checkpoint switches few and what happens when a server dies.

``BatchRun`` is the running half of ``Batch`` (``batch.py`` holds its state, control
and display); it lives here so that a module reads as one concern.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..archive import Archive
from ..archive.files import thumbnail
from ..core.config import Settings
from ..core.errors import ArchiveError, InvalidRequestError, PixeryError, RateLimitError
from ..core.observers import Observers
from ..core.sync import run_sync
from ..core.tasks import spawn
from ..core.types import Generation
from .jobs import Job, JobFailure, Result, cancelled_error, unexpected_error
from .progress import ProgressSnapshot, make_reporter

if TYPE_CHECKING:
    from .batch import Batch

__all__ = [
    "CLOUD_CONCURRENCY",
    "DEFAULT_CLOUD_CONCURRENCY",
    "RATE_LIMIT_RETRIES",
    "SELFHOSTED_CONCURRENCY",
    "BatchRun",
    "run_interruptible",
]

log = logging.getLogger(__name__)

#: Requests a batch has in flight on the self-hosted server (it draws one at a time).
SELFHOSTED_CONCURRENCY = 1
#: Requests a batch has in flight per cloud provider; edit to change the default for a session.
CLOUD_CONCURRENCY: dict[str, int] = {}
DEFAULT_CLOUD_CONCURRENCY = 4
#: A job turned away with a 429 that says to wait (a proxy in front of your server, say)
#: is tried again up to this many times, waiting as ``Retry-After`` asks (else 2, 4, 8 s),
#: but never for longer than ``RATE_LIMIT_MAX_WAIT`` at a time. Cloud providers wait out
#: their own 429s before the error reaches the batch, so those are not tried again here.
RATE_LIMIT_RETRIES = 3
RATE_LIMIT_MAX_WAIT = 60.0
RATE_LIMIT_BACKOFF = 2.0
#: The clock a rate-limit wait goes through (tests replace it).
_sleep = asyncio.sleep


class BatchRun:
    """Running a ``Batch``'s jobs: its workers, their results, its progress observers.

    A base of ``Batch``, which sets every attribute below in its ``__init__``.
    """

    id: str
    jobs: tuple[Job, ...]
    results: list[Result]
    archive: Archive | None
    _params: dict[str, Any]
    _settings: Settings
    _concurrency: int | Mapping[str, int] | None
    _thumbs: dict[int, bytes]
    _observers: Observers[[ProgressSnapshot]]
    _workers: list[asyncio.Task[None]]
    _keepers: set[asyncio.Task[None]]
    _running: set[int]
    _run_indices: list[int]
    _arrivals: list[int]
    _started: float
    _ended: float | None
    _loop: asyncio.AbstractEventLoop | None
    _cancel_requested: bool
    _active: bool
    _reporter: Any
    _unsubscribe: Callable[[], None] | None

    # -- observing ---------------------------------------------------------------------------

    def subscribe(self, observer: Callable[[ProgressSnapshot], None]) -> Callable[[], None]:
        """Call ``observer`` with a ``ProgressSnapshot`` on every change; returns an unsubscribe."""
        return self._observers.add(observer)

    def snapshot(self) -> ProgressSnapshot:
        """Where the current (or last) run stands; its clock stops when the run ends."""
        indices = self._run_indices
        results = [self.results[i] for i in indices]
        gens = [r for r in results if isinstance(r, Generation)]
        stopped = [r for r in results if isinstance(r, JobFailure)]
        ended = self._ended if self._ended is not None else time.monotonic()
        return ProgressSnapshot(
            total=len(indices),
            done=len(gens),
            failed=sum(not r.cancelled for r in stopped),
            cancelled=sum(r.cancelled for r in stopped),
            running=len(self._running),
            elapsed_s=ended - self._started if self._started else 0.0,
            cost_usd=sum(g.cost_usd for g in gens),
            finished=not self._active,
        )

    @property
    def arrival_order(self) -> list[int]:
        """Indices of the current (or last) run's jobs whose image arrived, in arrival order."""
        return list(self._arrivals)

    def notify(self) -> None:
        """Tell the observers where the run stands now."""
        if self._observers:  # a broken display is logged by Observers; the batch goes on
            self._observers.notify(self.snapshot())

    # -- running ------------------------------------------------------------------------------------

    def concurrency_for(self, provider: str) -> int:
        """How many requests the batch keeps in flight on ``provider`` (per server)."""
        conc = self._concurrency
        if isinstance(conc, int):
            return conc
        if isinstance(conc, Mapping) and provider in conc:
            return int(conc[provider])
        if provider == "selfhosted":
            return SELFHOSTED_CONCURRENCY
        return CLOUD_CONCURRENCY.get(provider, DEFAULT_CLOUD_CONCURRENCY)

    def _queues(self, indices: Iterable[int]) -> dict[tuple[str, ...], deque[int]]:
        """One queue per back end (a self-hosted server is keyed by its URL)."""
        queues: dict[tuple[str, ...], list[int]] = {}
        for i in indices:
            job = self.jobs[i]
            key: tuple[str, ...] = (
                ("selfhosted", self._settings.selfhosted_url or "")
                if job.provider == "selfhosted"
                else (job.provider,)
            )
            queues.setdefault(key, []).append(i)
        out: dict[tuple[str, ...], deque[int]] = {}
        for key, items in queues.items():
            if key[0] == "selfhosted":  # group by model: a checkpoint switch costs ~10 s
                rank: dict[str, int] = {}
                for i in items:
                    rank.setdefault(self.jobs[i].model, len(rank))
                items = sorted(items, key=lambda i: rank[self.jobs[i].model])
            out[key] = deque(items)
        return out

    async def _execute(self, indices: Sequence[int], progress: Any) -> None:
        if self._active:
            raise InvalidRequestError(
                "This batch is still running; wait for it or cancel it first."
            )
        self._active = True
        self._loop = asyncio.get_running_loop()
        self._run_indices = list(indices)
        self._arrivals = []
        self._started = time.monotonic()
        self._ended = None
        rearchive = {
            i: r.generation
            for i in indices
            if isinstance(r := self.results[i], JobFailure) and r.generation is not None
        }
        for i in indices:
            self.results[i] = None
        self._reporter = make_reporter(progress)
        self._unsubscribe = self.subscribe(self._reporter) if self._reporter is not None else None
        try:
            for i, generation in rearchive.items():
                self.results[i] = generation
                self._keep_later(i, generation)
            queues = self._queues(i for i in indices if i not in rearchive)
            from .scheduler import pool_workers  # several servers: their own scheduler

            self._workers = pool_workers(self, queues) + [
                asyncio.create_task(self._worker(queue), name=f"pixery-batch-{self.id}")
                for key, queue in queues.items()
                for _ in range(max(1, min(self.concurrency_for(key[0]), len(queue))))
            ]
            self.notify()
            if self._workers:
                await asyncio.wait(self._workers)
        finally:
            await self._wind_down()

    async def _wind_down(self) -> None:
        """End the run: stop the workers, see every arrived image archived, mark what
        never finished as cancelled. Idempotent: ``run_batch`` calls it again after a
        kernel interrupt, which can land in any task's code (even this batch's runner)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        if workers:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(workers)
            for worker in workers:  # an interrupt may have ended one: retrieve, don't warn
                if not worker.cancelled():
                    worker.exception()
        try:
            while self._keepers:
                await asyncio.wait(set(self._keepers))
            # An image whose save never started (its task was hit by the interrupt).
            for i in self._run_indices:
                result = self.results[i]
                if (
                    isinstance(result, Generation)
                    and self.archive is not None
                    and result.id is None
                ):
                    await self._keep(i, result)
        except asyncio.CancelledError:
            pass  # interrupted again while saving: the saves run on in their threads
        for i in self._run_indices:
            if self.results[i] is None:
                self.results[i] = JobFailure(self.jobs[i], cancelled_error())
        self._finish_run()

    def _finish_run(self) -> None:
        if self._active:
            self._ended = time.monotonic()
        was_active, self._active = self._active, False
        self._cancel_requested = False
        self._running.clear()
        if was_active:
            self.notify()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._reporter is not None:
            if hasattr(self._reporter, "close"):
                self._reporter.close()
            self._reporter = None

    async def _worker(self, queue: deque[int]) -> None:
        while queue and not self._cancel_requested:
            await self.run_job(queue.popleft(), self._settings)

    async def _draw(self, job: Job, settings: Settings) -> Generation:
        """One job; a 429 that says to wait is waited out (``RATE_LIMIT_RETRIES``)."""
        from .generate import agenerate

        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                return await agenerate(
                    job.prompt,
                    job.model,
                    seed=job.seed,
                    settings=settings,
                    archive=False,
                    **{**self._params, **dict(job.overrides)},
                )
            except RateLimitError as exc:
                wait = _rate_limit_wait(exc, attempt)
                if wait is None:
                    if attempt:
                        exc.message = f"{exc.message} (tried {attempt + 1} times in this batch)"
                        exc.args = (exc.message,)
                    raise
                await _sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def run_job(
        self,
        i: int,
        settings: Settings,
        *,
        give_back: Callable[[PixeryError], bool] | None = None,
    ) -> Generation | None:
        """Make job ``i`` with ``settings`` and record its result (the image, or why not).

        ``give_back(error)`` returning True leaves the job without a result, for
        the caller to run again elsewhere (a pool's server that died before any
        image came back).
        """
        job = self.jobs[i]
        self._running.add(i)
        self.notify()
        try:
            generation = await self._draw(job, settings)
        except asyncio.CancelledError:
            self.results[i] = JobFailure(job, cancelled_error())
            raise
        except PixeryError as exc:
            if give_back is None or not give_back(exc):
                self.results[i] = JobFailure(job, exc)
            return None
        except Exception as exc:
            self.results[i] = JobFailure(job, unexpected_error(exc, self._settings))
            return None
        else:
            self.results[i] = generation
            self._keep_later(i, generation)
            return generation
        finally:
            self._running.discard(i)
            self.notify()

    def _keep_later(self, index: int, generation: Generation) -> None:
        """Archive an arrived image in the background (an interrupt that ends the task is
        handled by ``_wind_down``); the job counts as arrived from now on."""
        self._arrivals.append(index)
        spawn(self._keep(index, generation), self._keepers, name=f"pixery-keep-{self.id}")

    async def _keep(self, index: int, generation: Generation) -> None:
        """Archive an arrived image (off the event loop) and keep its thumbnail for the grid.

        An image that could not be archived becomes a failure that holds it, so
        ``retry_failed()`` saves it instead of drawing it again.
        """
        try:
            record = None
            if self.archive is not None:
                record = await self.archive.asave(generation, batch_id=self.id)
        except Exception as exc:  # any failure to save must hold on to the image
            error = exc if isinstance(exc, ArchiveError) else unexpected_error(exc, self._settings)
            self.results[index] = JobFailure(self.jobs[index], error, generation=generation)
        else:
            with contextlib.suppress(Exception):  # no thumbnail now: the grid makes one later
                self._thumbs[index] = await (
                    self.archive.athumbnail(record, generation.png_bytes)
                    if self.archive is not None and record is not None
                    else asyncio.to_thread(thumbnail, generation.png_bytes)
                )
        self.notify()

    # -- display ----------------------------------------------------------------------------------


def _rate_limit_wait(exc: RateLimitError, attempt: int) -> float | None:
    """Seconds to wait before trying a rate-limited job again, or None: give up."""
    if not exc.retryable or attempt >= RATE_LIMIT_RETRIES:
        return None
    wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_BACKOFF * 2**attempt
    return wait if wait <= RATE_LIMIT_MAX_WAIT else None


def run_interruptible(batch: Batch, coro: Any) -> Batch:
    try:
        run_sync(coro)
    except KeyboardInterrupt:
        with contextlib.suppress(KeyboardInterrupt):  # a second interrupt: stop cleaning up
            run_sync(batch._wind_down())
        kept = len(batch.generations)
        where = f" (archived in {batch.archive.root})" if batch.archive is not None else ""
        log.warning(
            "Interrupted: %d of %d images kept%s; px.last_batch().retry_failed() resumes the rest.",
            kept,
            len(batch),
            where,
        )
        raise
    return batch
