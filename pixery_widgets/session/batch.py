"""Batches: many prompts × seeds × models, scheduled per back end, every image kept.

Jobs are ordered prompt-major, then seed, then model, so a model comparison
shows the same prompt and seed side by side; the result keeps that order
whatever order images arrive in. A sweep's ``vary=`` axes nest between seed
and model (``session.sweep``); ``batch.grid()`` draws them (``session.sheet``).

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

Cancelling (``batch.cancel()``, cancelling the awaiting task, or interrupting
the kernel during ``run_batch``) stops queued jobs and cancels those in
flight; images that arrived stay (they are archived as they arrive). Jobs that
did not finish are in ``.failed`` with reason ``"cancelled"``, so
``retry_failed()`` resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..archive import Archive, get_archive
from ..archive.files import thumbnail
from ..core import schema
from ..core.catalog import ModelSpec, resolve_model
from ..core.config import Settings, load_settings
from ..core.errors import (
    ArchiveError,
    CostLimitError,
    InvalidRequestError,
    PixeryError,
    RateLimitError,
)
from ..core.sync import run_sync
from ..core.types import Generation
from ..providers.servers import known_pool_models
from .ledger import LEDGER
from .progress import ProgressSnapshot, make_reporter
from .sweep import Sweep, plan_sweep
from .sweep_checks import estimate_cost, validate_sweep
from .validation import as_references

if TYPE_CHECKING:
    from PIL import Image

    from .sheet import ContactSheet

__all__ = [
    "CLOUD_CONCURRENCY",
    "DEFAULT_CLOUD_CONCURRENCY",
    "SELFHOSTED_CONCURRENCY",
    "Batch",
    "Job",
    "JobFailure",
    "arun_batch",
    "last_batch",
    "run_batch",
    "start_batch",
]

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


@dataclass(frozen=True)
class Job:
    """One image to make: a prompt, a model and a seed (``None``: the back end picks).

    A sweep's job also carries the request keywords its cell sets (``overrides``) and
    its index on each of the sweep's axes (``coords``).
    """

    index: int
    prompt: str
    model: str
    provider: str
    seed: int | None
    overrides: tuple[tuple[str, Any], ...] = ()
    coords: tuple[int, ...] = ()

    def label(self) -> str:
        seed = f"seed {self.seed}" if self.seed is not None else "random seed"
        own = "".join(
            f" · {k}={v:g}" if isinstance(v, float) else f" · {k}={v}" for k, v in self.overrides
        )
        return f"#{self.index + 1} {self.model} · {seed}{own}"


@dataclass(frozen=True)
class JobFailure:
    """A job that did not give an archived image, and why.

    ``generation`` is set when the image arrived (and was paid for) but could
    not be archived; ``retry_failed()`` then only retries the saving.
    """

    job: Job
    error: PixeryError
    generation: Generation | None = None

    @property
    def reason(self) -> str:
        """A few words: "cancelled", "connection refused", "timed out", ..."""
        return self.error.reason or self.error.message

    def __repr__(self) -> str:
        return f"JobFailure({self.job.label()!r}, reason={self.reason!r}, error={self.error.message!r})"


Result = Generation | JobFailure | None


def cancelled_error() -> PixeryError:
    return PixeryError(
        "Cancelled before it finished; retry_failed() runs it again.", reason="cancelled"
    )


def _unexpected(exc: BaseException, settings: Settings) -> PixeryError:
    err = PixeryError(
        settings.redact(f"Unexpected error: {type(exc).__name__}: {exc}"), reason="unexpected error"
    )
    err.__cause__ = exc
    return err


def _new_batch_id() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


_last: Batch | None = None


def last_batch() -> Batch | None:
    """The batch started last in this session (also after an interrupt cut ``run_batch`` short)."""
    return _last


class Batch:
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
        self._observers: list[Callable[[ProgressSnapshot], None]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._keepers: set[asyncio.Task[None]] = set()
        self._running: set[int] = set()
        self._run_indices: list[int] = []
        self._started = 0.0
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

    # -- observing ---------------------------------------------------------------------------

    def subscribe(self, observer: Callable[[ProgressSnapshot], None]) -> Callable[[], None]:
        """Call ``observer`` with a ``ProgressSnapshot`` on every change; returns an unsubscribe."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def snapshot(self) -> ProgressSnapshot:
        """Where the current (or last) run stands."""
        indices = self._run_indices
        results = [self.results[i] for i in indices]
        gens = [r for r in results if isinstance(r, Generation)]
        return ProgressSnapshot(
            total=len(indices),
            done=len(gens),
            failed=sum(isinstance(r, JobFailure) for r in results),
            running=len(self._running),
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
            cost_usd=sum(g.cost_usd for g in gens),
            finished=not self._active,
        )

    def _notify(self) -> None:
        if not self._observers:
            return
        snap = self.snapshot()
        for observer in list(self._observers):
            try:
                observer(snap)
            except Exception as exc:  # a broken display must not break the batch
                print(f"pixery: progress display failed: {exc}", file=sys.stderr)

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
        return _run_interruptible(self, self.aretry_failed(progress=progress))

    # -- running ------------------------------------------------------------------------------------

    def _limit(self, provider: str) -> int:
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
        self._started = time.monotonic()
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
                for _ in range(max(1, min(self._limit(key[0]), len(queue))))
            ]
            self._notify()
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
        was_active, self._active = self._active, False
        self._cancel_requested = False
        self._running.clear()
        if was_active:
            self._notify()
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
        self._notify()
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
            self.results[i] = JobFailure(job, _unexpected(exc, self._settings))
            return None
        else:
            self.results[i] = generation
            self._keep_later(i, generation)
            return generation
        finally:
            self._running.discard(i)
            self._notify()

    def _keep_later(self, index: int, generation: Generation) -> None:
        task = asyncio.get_running_loop().create_task(self._keep(index, generation))
        self._keepers.add(task)
        task.add_done_callback(self._keeper_done)

    def _keeper_done(self, task: asyncio.Task[None]) -> None:
        self._keepers.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an interrupt that ended it is handled by _wind_down

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
            error = exc if isinstance(exc, ArchiveError) else _unexpected(exc, self._settings)
            self.results[index] = JobFailure(self.jobs[index], error, generation=generation)
        else:
            with contextlib.suppress(Exception):  # no thumbnail now: the grid makes one later
                self._thumbs[index] = await (
                    self.archive.athumbnail(record, generation.png_bytes)
                    if self.archive is not None and record is not None
                    else asyncio.to_thread(thumbnail, generation.png_bytes)
                )
        self._notify()

    # -- display ----------------------------------------------------------------------------------

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
        for i, (job, result) in enumerate(zip(self.jobs, self.results, strict=True)):
            caption = job.label()
            short = job.prompt if len(job.prompt) <= 40 else job.prompt[:37] + "…"
            if isinstance(result, Generation):
                thumb = self._thumbs.get(i)
                if thumb is None:
                    try:
                        thumb = self._thumbs[i] = thumbnail(result.png_bytes)
                    except Exception:
                        thumb = None
                seed = f"seed {result.seed}" if result.seed is not None else "random seed"
                caption = f"#{i + 1} {result.model} · {seed} · {result.elapsed_s:.1f} s"
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
        return grid_html(items, header=f"Batch {self.id}: {self.summary()}{where}")


# -- planning ------------------------------------------------------------------------------------


def _rate_limit_wait(exc: RateLimitError, attempt: int) -> float | None:
    """Seconds to wait before trying a rate-limited job again, or None: give up."""
    if not exc.retryable or attempt >= RATE_LIMIT_RETRIES:
        return None
    wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_BACKOFF * 2**attempt
    return wait if wait <= RATE_LIMIT_MAX_WAIT else None


def _check_concurrency(concurrency: int | Mapping[str, int] | None) -> None:
    values = (
        [concurrency]
        if isinstance(concurrency, int)
        else list(concurrency.values())
        if isinstance(concurrency, Mapping)
        else []
    )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(
                f"concurrency must be a whole number of at least 1, got {value!r}."
            )


def plan_jobs(
    prompts: Sequence[str], specs: Sequence[ModelSpec], seeds: int | Iterable[int | None] | None
) -> list[Job]:
    """prompts × seeds × models, prompt-major, then seed, then model (``plan_sweep`` without axes).

    Models without seed control get ``seed=None`` (one variation per seed slot).
    """
    return list(plan_sweep(prompts, specs, seeds).jobs)


@schema.with_request_fields(exclude=("seed",))
async def plan_batch(
    prompts: str | Sequence[str],
    model: str | Sequence[str] = "animagine",
    *,
    seeds: int | Iterable[int | None] | None = None,
    concurrency: int | Mapping[str, int] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    archive: bool | Archive = True,
    max_cost_usd: float | None = None,
    settings: Settings | None = None,
    vary: Mapping[str, Iterable[Any]] | None = None,
    **params: Any,
) -> Batch:
    """Check everything and build the ``Batch`` without running it.

    Order of refusals, all before any image request: bad prompts, models, seeds
    or axes; the cost guard; then each model's request check (which may ask a
    self-hosted server for its LoRAs), each axis value and each image's request.
    """
    settings_given = settings is not None
    settings = settings if settings is not None else load_settings()
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompt_list:
        raise InvalidRequestError("The batch has no prompts.")
    for n, prompt in enumerate(prompt_list, 1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError(
                f"Prompt {n} of the batch is empty; describe the image you want."
            )
    _check_concurrency(concurrency)
    if "seed" in params:
        raise InvalidRequestError("A batch takes seeds=, not seed= (e.g. seeds=[7] or seeds=4).")
    model_names = [model] if isinstance(model, str) else list(model)
    if not model_names:
        raise InvalidRequestError("The batch has no model.")
    local = known_pool_models(settings) or ()
    specs = list(
        {s.id: s for s in (resolve_model(m, local_models=local) for m in model_names)}.values()
    )
    sweep = plan_sweep(prompts, specs, seeds, vary, params)
    jobs = list(sweep.jobs)
    estimate = round(
        estimate_cost(jobs, specs, params)
        + _gpu_estimate(settings, sum(j.provider == "selfhosted" for j in jobs)),
        6,
    )
    if max_cost_usd is not None and estimate > max_cost_usd + 1e-9:
        raise CostLimitError(
            f"This batch of {len(jobs)} images would cost about ${estimate:.3f}, above "
            f"max_cost_usd=${max_cost_usd:.3f}; nothing was sent. Raise the limit or make fewer images.",
            reason="over the cost limit",
        )

    params = dict(params)
    if params.get("reference") is not None:  # files read once for the batch, off the loop
        params["reference"] = await asyncio.to_thread(as_references, params["reference"])
    fields, options = schema.split(params)
    await validate_sweep(sweep, specs, settings, fields, options, keywords=_KEYWORDS)

    target: Archive | None
    if archive is False:
        target = None
    elif isinstance(archive, Archive):
        target = archive
    else:
        target = await asyncio.to_thread(
            get_archive, out_dir if out_dir is not None else True, settings
        )

    global _last
    batch = Batch(
        jobs,
        params=params,
        settings=settings,
        settings_given=settings_given,
        archive=target,
        concurrency=concurrency,
        estimated_cost_usd=estimate,
    )
    batch.sweep = sweep
    _last = batch
    return batch


def _gpu_estimate(settings: Settings, images: int) -> float:
    """Self-hosted images at SELFHOSTED_COST_PER_HOUR, each taking this session's mean time."""
    rate = settings.selfhosted_cost_per_hour
    return rate * images * LEDGER.seconds_per_selfhosted_image() / 3600 if rate else 0.0


# -- the public entry points ----------------------------------------------------------------------


@schema.with_request_fields(exclude=("seed",))
async def arun_batch(
    prompts: str | Sequence[str],
    model: str | Sequence[str] = "animagine",
    *,
    seeds: int | Iterable[int | None] | None = None,
    concurrency: int | Mapping[str, int] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    archive: bool | Archive = True,
    max_cost_usd: float | None = None,
    progress: Any = True,
    settings: Settings | None = None,
    vary: Mapping[str, Iterable[Any]] | None = None,
    **params: Any,
) -> Batch:
    """Make one image per (prompt, seed, model) and return the ``Batch`` when all are settled.

    ``seeds``: ``None`` → one job per prompt, the back end picks the seed;
    an int ``n`` → ``n`` random seeds per prompt, drawn now and recorded (the
    same seeds for every model); an iterable → exactly those seeds.
    ``model`` may be a list for a comparison: jobs are prompt-major, then seed,
    then model. ``concurrency``: an int for every back end, or
    ``{"fal": 8, "selfhosted": 1}``; default 1 per self-hosted server, 4 per
    cloud provider (each server of a pool gets its own). ``max_cost_usd`` refuses a
    batch whose estimate (list prices; self-hosted GPU time at
    SELFHOSTED_COST_PER_HOUR) is above it (``CostLimitError``), before any request. ``out_dir`` archives
    somewhere else than ``PIXERY_ARCHIVE_DIR``; ``archive=False`` keeps images in
    memory only. ``progress``: True (a bar), False, or a callable taking a
    ``ProgressSnapshot``. The other keywords are ``agenerate``'s request fields (see the
    signature; ``seeds`` instead of ``seed``) and provider options, checked for every model
    before anything is sent.

    ``vary`` sweeps any of those fields: ``{"cfg_scale": [4, 6, 8], "lora": [None,
    "pixel_art"]}`` makes one image per combination, also crossed with prompts, seeds
    and models; ``"size"`` takes (width, height) pairs. Results are nested prompt →
    seed → the vary= axes in the order given → model; every combination is checked
    and priced first (``session.sweep``). ``batch.grid()`` draws the contact sheet.

    A failed job does not stop the others; see ``.failed`` and ``retry_failed()``.
    """
    batch = await plan_batch(
        prompts,
        model,
        seeds=seeds,
        concurrency=concurrency,
        out_dir=out_dir,
        archive=archive,
        max_cost_usd=max_cost_usd,
        settings=settings,
        vary=vary,
        **params,
    )
    await batch._execute(range(len(batch.jobs)), progress)
    return batch


@schema.with_request_fields(exclude=("seed",))
async def start_batch(
    prompts: str | Sequence[str],
    model: str | Sequence[str] = "animagine",
    *,
    seeds: int | Iterable[int | None] | None = None,
    concurrency: int | Mapping[str, int] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    archive: bool | Archive = True,
    max_cost_usd: float | None = None,
    progress: Any = True,
    settings: Settings | None = None,
    vary: Mapping[str, Iterable[Any]] | None = None,
    **params: Any,
) -> Batch:
    """Check and start a batch in the background; returns the running ``Batch`` at once.

    In a notebook the cell ends immediately, so ``batch.cancel()`` works from
    another cell; ``await batch`` waits for it. Same arguments as ``arun_batch``.
    """
    batch = await plan_batch(
        prompts,
        model,
        seeds=seeds,
        concurrency=concurrency,
        out_dir=out_dir,
        archive=archive,
        max_cost_usd=max_cost_usd,
        settings=settings,
        vary=vary,
        **params,
    )
    batch._loop = asyncio.get_running_loop()
    batch._runner = batch._loop.create_task(
        batch._execute(range(len(batch.jobs)), progress), name=f"pixery-batch-{batch.id}"
    )
    _background.add(batch._runner)
    batch._runner.add_done_callback(_background.discard)
    return batch


_background: set[asyncio.Task[Any]] = set()


@schema.with_request_fields(exclude=("seed",))
def run_batch(
    prompts: str | Sequence[str],
    model: str | Sequence[str] = "animagine",
    *,
    seeds: int | Iterable[int | None] | None = None,
    concurrency: int | Mapping[str, int] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    archive: bool | Archive = True,
    max_cost_usd: float | None = None,
    progress: Any = True,
    settings: Settings | None = None,
    vary: Mapping[str, Iterable[Any]] | None = None,
    **params: Any,
) -> Batch:
    """Sync twin of ``arun_batch``; in a kernel too. Interrupting the kernel cancels
    what is in flight and keeps every arrived image (``px.last_batch()`` holds them)."""
    batch = run_sync(
        plan_batch(
            prompts,
            model,
            seeds=seeds,
            concurrency=concurrency,
            out_dir=out_dir,
            archive=archive,
            max_cost_usd=max_cost_usd,
            settings=settings,
            vary=vary,
            **params,
        )
    )
    return _run_interruptible(batch, batch._execute(range(len(batch.jobs)), progress))


def _run_interruptible(batch: Batch, coro: Any) -> Batch:
    try:
        run_sync(coro)
    except KeyboardInterrupt:
        with contextlib.suppress(KeyboardInterrupt):  # a second interrupt: stop cleaning up
            run_sync(batch._wind_down())
        kept = len(batch.generations)
        where = f" (archived in {batch.archive.root})" if batch.archive is not None else ""
        print(
            f"\nInterrupted: {kept} of {len(batch)} images kept{where}; "
            "px.last_batch().retry_failed() resumes the rest.",
            file=sys.stderr,
        )
        raise
    return batch


#: The batch functions' keywords, offered as suggestions for a misspelt one.
_KEYWORDS = schema.keywords_of(arun_batch)
