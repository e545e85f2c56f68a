"""What the panel decides, as plain Python: the menu and its selection, the form
that fits the chosen model, and running (or cancelling) a generation.

``PanelController`` has no widgets and no HTTP of its own: it follows a
``PoolWatcher`` (one ``ServerWatcher`` per self-hosted server), applies the menu rule of ``_menu`` and generates through
``_api.agenerate`` (the same path as ``px.agenerate``). With a count above
one it runs a batch through ``_batch.start_batch`` (the same scheduling,
archive and cancel as ``px.arun_batch``) on consecutive seeds, and hands each
image over as it arrives. The X/Y section's rows make that batch a sweep
(``sweep_text.panel_sweep``), whose contact sheet ends up in ``sheet``. The widgets in ``pixery_widgets.widgets`` only draw
what it says and forward clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, fields
from typing import Any

from ..core import schema
from ..core.catalog import SDXL_SIZES, ModelSpec, resolve_model
from ..core.errors import InvalidRequestError, PixeryError, UnknownModelError
from ..core.tasks import spawn
from ..core.types import (
    DEFAULT_IP_ADAPTER_SCALE,
    DEFAULT_LORA_SCALE,
    Generation,
    SelfHostedStatus,
    ServerState,
)
from ..providers.selfhosted import SelfHostedClient
from .batch import Batch, JobFailure, start_batch
from .generate import agenerate
from .menu import MenuEntry, build_menu, pick_selection
from .pool_watcher import PoolWatcher
from .progress import ProgressSnapshot, format_duration
from .sheet import ContactSheet
from .sweep_text import PanelSweep, panel_sweep
from .validation import MAX_SEED, RANDOM_SEED_RANGE
from .watcher import ServerWatcher

__all__ = [
    "MAX_COUNT",
    "FormValues",
    "FormView",
    "PanelController",
    "batch_seeds",
    "check_count",
    "parse_seed",
]

#: Most images one press of Generate makes (the Count field's maximum).
MAX_COUNT = 64

Listener = Callable[["PanelController", str], None]


@dataclass(frozen=True)
class FormValues:
    """What the user typed and picked, as the widgets hold it: request fields of the
    schema (``size`` is width × height, ``seed`` the text of the Seed field) and ``count``."""

    prompt: str
    negative_prompt: str = ""
    size: tuple[int, int] = SDXL_SIZES[0]
    seed: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    reference: bytes | None = None
    ip_adapter_scale: float = DEFAULT_IP_ADAPTER_SCALE
    lora: str | None = None
    lora_scale: float = DEFAULT_LORA_SCALE
    count: int = 1
    #: The X/Y section's rows, (field, typed values); empty when it is closed.
    sweep: tuple[tuple[str, str], ...] = ()


#: The form's values that are request fields as they are (``request_kwargs`` adds the rest).
_FORM_FIELDS = frozenset(f.name for f in schema.FIELDS) - {"prompt", "seed"}


@dataclass(frozen=True)
class FormView:
    """Which controls make sense for the chosen model, and their defaults."""

    model: str | None
    label: str
    is_local: bool
    takes_negative_prompt: bool
    takes_seed: bool
    takes_reference: bool
    takes_steps_cfg: bool
    default_steps: int | None
    default_cfg: float | None
    lora_enabled: bool
    loras: tuple[str, ...]
    lora_note: str
    can_generate: bool


def parse_seed(text: str) -> int | None:
    """The seed field: empty means random; otherwise a whole number."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidRequestError(
            f"The seed must be a whole number (or empty for a random one), got {text!r}."
        ) from None


def check_count(count: object) -> int:
    """The Count field: how many images, 1 to ``MAX_COUNT``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InvalidRequestError(
            f"Count must be a whole number from 1 to {MAX_COUNT}, got {count!r}."
        )
    return count


def batch_seeds(
    count: int, seed: int | None, *, takes_seed: bool, rng: random.Random | None = None
) -> list[int | None]:
    """Seeds for ``count`` images of one prompt: ``seed``, ``seed + 1``, ...

    Without a seed, one random base is drawn and the rest follow it, so every
    image can be made again from the seed in its caption. A model without seed
    control gets ``None`` for each (the back end varies them itself).
    """
    count = check_count(count)
    if not takes_seed:
        return [None] * count
    if seed is None:
        seed = (rng or random.SystemRandom()).randrange(RANDOM_SEED_RANGE - count + 1)
    if seed + count - 1 > MAX_SEED:
        raise InvalidRequestError(
            f"Seeds {seed} to {seed + count - 1} go past the largest seed (2**63 - 1); "
            "choose a smaller seed or fewer images."
        )
    return list(range(seed, seed + count))


class PanelController:
    """The panel's state and rules; widgets subscribe and render.

    Listeners get ``(controller, what)`` with ``what`` one of ``"status"``
    (server status or menu changed), ``"selection"``, ``"generation"`` (one
    started, finished, failed or was cancelled), ``"message"`` and, for a
    count above one, ``"progress"`` (the batch moved on; new images may be in
    ``batch_images``).
    """

    def __init__(
        self,
        watcher: PoolWatcher | ServerWatcher | None = None,
        *,
        generate: Callable[..., Awaitable[Generation]] = agenerate,
        start: Callable[..., Awaitable[Batch]] = start_batch,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.watcher = watcher if watcher is not None else PoolWatcher()
        self._generate = generate
        self._start_batch = start
        self._clock = clock
        self._rng = rng
        self.menu: list[MenuEntry] = []
        self.selection: str | None = None
        self.user_chose = False
        #: A line for the user about background work ("Loading pony on the server…").
        self.message: str = ""
        self.generate_task: asyncio.Task[Generation | None] | None = None
        self.last_generation: Generation | None = None
        #: The last generation's failure, in words (``None`` after a success).
        self.last_error: str | None = None
        self.last_outcome: str | None = None  # "done" | "failed" | "cancelled"
        #: The panel's batch (count above one) while it runs and after; ``None`` otherwise.
        self.batch: Batch | None = None
        #: That batch's images in the order they arrived (each once archived).
        self.batch_images: list[Generation] = []
        #: Its failures (and a cancel) in words, e.g. "1 of 4 failed: ..."; ``None`` if none.
        self.batch_note: str | None = None
        #: The contact sheet of the panel's last X/Y sweep (``None`` after anything else).
        self.sheet: ContactSheet | None = None
        self._batch_total = 0
        self._batch_final: ProgressSnapshot | None = None
        self._batch_cancel_asked = False
        self._arrived: list[int] = []
        self._seen: set[int] = set()
        self._started_at: float | None = None
        self._last_elapsed: float = 0.0
        self._prefilled: tuple[str | None, int | None, float | None] | None = None
        self._prewarm_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: list[Listener] = []
        self._unsubscribe = self.watcher.subscribe(self._on_watcher)
        self._rebuild()

    # -- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, what: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(self, what)
            except Exception as exc:  # shown, not lost: the panel's message line
                self.message = f"Display update failed: {type(exc).__name__}: {exc}"

    # -- menu and selection ---------------------------------------------------------------

    @property
    def status(self) -> SelfHostedStatus:
        return self.watcher.status

    def _on_watcher(self, _watcher: PoolWatcher | ServerWatcher) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        self.menu = build_menu(self.status, self.watcher.settings.providers_with_keys)
        self.selection = pick_selection(self.menu, self.selection, user_chose=self.user_chose)
        self._notify("status")

    def entry(self, model_id: str | None) -> MenuEntry | None:
        return next((e for e in self.menu if e.id == model_id), None)

    def choose(self, model_id: str) -> bool:
        """The user picked ``model_id``; refused (False) if it is not an enabled entry.

        A local model that is not loaded yet is pre-warmed in the background.
        """
        entry = self.entry(model_id)
        if entry is None or not entry.enabled:
            return False
        changed = model_id != self.selection
        self.selection = model_id
        self.user_chose = True
        if changed:
            self._notify("selection")
        if entry.is_local and not entry.loaded:
            self.prewarm(model_id)
        return True

    def spec(self) -> ModelSpec | None:
        if self.selection is None:
            return None
        try:
            return resolve_model(self.selection, local_models=self.status.local_models)
        except UnknownModelError:
            return None

    def view(self) -> FormView:
        """The form for the chosen model on the server as it is now."""
        spec = self.spec()
        status = self.status
        is_local = bool(spec and spec.is_local)
        steps = cfg = None
        if spec is not None:
            info = status.models.get(spec.id) if status.models else None
            steps = info.default_steps if info and info.default_steps else spec.default_steps
            cfg = info.default_cfg if info and info.default_cfg else spec.default_cfg
        lora_enabled = is_local and status.reachable
        if not is_local:
            note = "LoRAs work with a model on your own server."
        elif not status.reachable:
            note = "LoRAs need your server to be reachable."
        elif not status.loras:
            note = "Your server has no LoRAs."
        else:
            note = ""
        return FormView(
            model=self.selection,
            label=spec.display_name if spec else (self.selection or ""),
            is_local=is_local,
            takes_negative_prompt=bool(spec and spec.takes_negative_prompt),
            takes_seed=bool(spec and spec.takes_seed),
            takes_reference=bool(spec and spec.max_references > 0),
            takes_steps_cfg=is_local,
            default_steps=steps,
            default_cfg=cfg,
            lora_enabled=lora_enabled,
            loras=status.loras if lora_enabled else (),
            lora_note=note,
            can_generate=spec is not None and not self.running,
        )

    def steps_cfg_to_show(
        self, shown_steps: int | None, shown_cfg: float | None
    ) -> tuple[int | None, float | None] | None:
        """New values for the steps/CFG fields, or ``None`` to leave the user's edits alone.

        Another model gets its defaults; the same model gets fresher defaults
        (from ``/models``) only while the fields still show what was filled in.
        """
        view = self.view()
        wanted = (view.default_steps, view.default_cfg)
        prev = self._prefilled
        untouched = prev is None or (shown_steps, shown_cfg) == (prev[1], prev[2])
        if prev is not None and prev[0] == view.model and not untouched:
            return None
        if prev is not None and prev[0] == view.model and (prev[1], prev[2]) == wanted:
            return None
        self._prefilled = (view.model, *wanted)
        return wanted

    # -- generating -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.generate_task is not None and not self.generate_task.done()

    def elapsed(self) -> float:
        """Seconds the running generation has taken so far (or the last one took)."""
        if self.running and self._started_at is not None:
            return self._clock() - self._started_at
        return self._last_elapsed

    def request_kwargs(self, form: FormValues) -> dict[str, Any]:
        """``agenerate`` keyword arguments for this form and the chosen model (pure).

        The form's request fields that the model takes (``schema.applicable``); the
        rest are left out rather than refused: the form hides them, and stale values
        in hidden fields must not matter.
        """
        spec = self.spec()
        if spec is None:
            raise InvalidRequestError("Choose a model first.")
        width, height = form.size
        values: dict[str, Any] = {
            f.name: getattr(form, f.name) for f in fields(form) if f.name in _FORM_FIELDS
        }
        values.update(width=width, height=height)
        values["seed"] = parse_seed(form.seed) if schema.takes(spec, "seed") else None
        return schema.applicable(values, spec)

    def start_generation(self, form: FormValues) -> asyncio.Task[Generation | None] | None:
        """Start generating in the background; the task is ``generate_task``.

        ``form.count`` above one makes that many images as a batch (see
        ``batch_seeds``); the task then returns the last image that arrived.
        Returns ``None`` when one is already running. Bad input is reported
        like any other failure (``last_error``), not raised at the button.
        """
        if self.running:
            return None
        model = self.selection
        self._started_at = self._clock()
        self.last_outcome = None
        self._reset_batch()
        seeds: list[int | None] | None = None
        try:
            kwargs = self.request_kwargs(form)
            count = check_count(form.count)
            sweep = panel_sweep(form.prompt, model or "", kwargs, form.sweep, count=count)
            kwargs = sweep.kwargs if sweep is not None else kwargs
            if sweep is not None or count > 1:
                spec = self.spec()
                seed = kwargs.pop("seed", None)
                if sweep is None or "seed" not in sweep.vary:  # one seed for every cell
                    seeds = batch_seeds(
                        count, seed, takes_seed=bool(spec and spec.takes_seed), rng=self._rng
                    )
        except PixeryError as exc:
            self._finish("failed", error=exc.message)
            return None
        try:
            asyncio.get_running_loop()  # before anything is set up: a script has none
        except RuntimeError:
            self._finish(
                "failed",
                error="No event loop is running here (a plain script?): "
                "call `await px.agenerate(...)` or `px.generate(...)` instead.",
            )
            return None
        if seeds is None and sweep is None:
            coro = self._run_generation(form.prompt, model or "", kwargs)
        else:
            self._batch_total = sweep.images if sweep is not None else len(seeds or ())
            coro = self._run_batch(form.prompt, model or "", seeds, kwargs, sweep)
        task = spawn(coro, self._tasks, self._task_failed, name="pixery-generate")
        self.generate_task = task
        self._notify("generation")
        return task

    async def _run_generation(
        self, prompt: str, model: str, kwargs: dict[str, Any]
    ) -> Generation | None:
        spec = self.spec()
        local = bool(spec and spec.is_local)
        settings = self.watcher.settings
        try:
            if local:
                with self.watcher.own_work("drawing an image for this notebook"):
                    generation = await self._generate(prompt, model, settings=settings, **kwargs)
            else:
                generation = await self._generate(prompt, model, settings=settings, **kwargs)
        except asyncio.CancelledError:
            self._finish("cancelled")
            raise
        except PixeryError as exc:
            self._finish("failed", error=settings.redact(exc.message))
            return None
        except Exception as exc:  # a bug: still shown in the panel, in words
            text = settings.redact(f"Unexpected error: {type(exc).__name__}: {exc}")
            self._finish("failed", error=text)
            return None
        finally:
            if local:
                self._spawn(self.watcher.check_now())  # the loaded model may have changed
        self.last_generation = generation
        self._finish("done")
        return generation

    def _finish(
        self, outcome: str, *, error: str | None = None, message: str | None = None
    ) -> None:
        if self._started_at is not None:
            self._last_elapsed = self._clock() - self._started_at
        self.last_outcome = outcome
        self.last_error = error
        if message is not None:
            self.message = message
        elif outcome == "cancelled":
            self.message = "Generation cancelled."
        self.generate_task = None
        self._notify("generation")

    def cancel(self) -> bool:
        """Cancel the running generation or batch; False if none runs.

        A batch stops its queued jobs and cancels those in flight; the images
        that arrived stay (archived, and in ``batch_images``).
        """
        task = self.generate_task
        if task is None or task.done():
            return False
        batch = self.batch
        if batch is not None and batch.running:
            self._batch_cancel_asked = True
            batch.cancel()
        else:
            task.cancel()
        return True

    # -- a count above one: a batch -------------------------------------------------------

    def _reset_batch(self) -> None:
        self.batch = None
        self.batch_images = []
        self.batch_note = None
        self.sheet = None
        self._batch_total = 0
        self._batch_final = None
        self._batch_cancel_asked = False
        self._arrived = []
        self._seen = set()

    async def _run_batch(
        self,
        prompt: str,
        model: str,
        seeds: list[int | None] | None,
        kwargs: dict[str, Any],
        sweep: PanelSweep | None = None,
    ) -> Generation | None:
        spec = self.spec()
        local = bool(spec and spec.is_local)
        settings = self.watcher.settings
        if sweep is not None:  # the X/Y section's axes and model(s)
            kwargs = {**kwargs, **({"vary": sweep.vary} if sweep.vary else {})}
        models = list(sweep.model) if sweep and not isinstance(sweep.model, str) else model
        work = (
            self.watcher.own_work(f"drawing {self._batch_total} images for this notebook")
            if local
            else contextlib.nullcontext()
        )
        batch: Batch | None = None
        try:
            with work:
                batch = await self._start_batch(
                    prompt,
                    models,
                    seeds=seeds,
                    progress=self._on_batch_progress,
                    settings=settings,
                    **kwargs,
                )
                self.batch = batch
                self._notify("progress")
                await batch.wait()
                if sweep is not None:
                    await self._draw_sheet(batch, sweep)
        except asyncio.CancelledError:
            if batch is not None:
                batch.cancel()  # the panel closed: stop the jobs too, keep what arrived
            self._finish_batch(cancelled=True)
            raise
        except PixeryError as exc:  # refused before any image was asked for
            self._finish_batch(error=settings.redact(exc.message))
            return None
        except Exception as exc:  # a bug: still shown in the panel, in words
            self._finish_batch(
                error=settings.redact(f"Unexpected error: {type(exc).__name__}: {exc}")
            )
            return None
        finally:
            if local:
                self._spawn(self.watcher.check_now())  # the loaded model may have changed
        stopped = any(isinstance(r, JobFailure) and r.reason == "cancelled" for r in batch.results)
        self._finish_batch(cancelled=self._batch_cancel_asked and stopped)
        return self.batch_images[-1] if self.batch_images else None

    async def _draw_sheet(self, batch: Batch, sweep: PanelSweep) -> None:
        """The sweep's contact sheet, drawn and archived off the event loop; a failure is
        said on the message line (the images are kept either way)."""
        try:
            self.sheet = await asyncio.to_thread(batch.grid, x=sweep.x, y=sweep.y)
        except Exception as exc:
            text = exc.message if isinstance(exc, PixeryError) else f"{type(exc).__name__}: {exc}"
            self._say(self.watcher.settings.redact(f"Could not draw the contact sheet: {text}"))

    def _on_batch_progress(self, _snapshot: ProgressSnapshot) -> None:
        """The batch moved on: hand over arrived images, update the words, tell the panel."""
        batch = self.batch
        if batch is None:  # its first report, before start_batch returned
            return
        self._collect_arrivals(batch, final=False)
        self.batch_note = self._failure_words(batch)
        self._notify("progress")

    def _collect_arrivals(self, batch: Batch, *, final: bool) -> None:
        """Move arrived images to ``batch_images`` in arrival order, each once it is archived
        (so its caption says where it was saved); ``final`` hands over the rest."""
        for i, result in enumerate(batch.results):
            if i not in self._seen and _arrived_image(result) is not None:
                self._seen.add(i)
                self._arrived.append(i)
        while self._arrived:
            result = batch.results[self._arrived[0]]
            image = _arrived_image(result)
            saving = (
                isinstance(result, Generation) and batch.archive is not None and result.id is None
            )
            if saving and not final:
                return
            self._arrived.pop(0)
            if image is not None:
                self.batch_images.append(image)
                self.last_generation = image

    def _failure_words(self, batch: Batch, *, cancelled: bool = False) -> str | None:
        """Failures ("2 of 8 failed: <why>") and what a cancel left, in words; ``None`` if none."""
        total = len(batch.jobs)
        failures = _failures(batch)
        parts = []
        if cancelled:
            made = sum(_arrived_image(r) is not None for r in batch.results)
            parts.append(f"Cancelled after {made} of {total} images.")
        if failures:
            why: list[str] = []
            for failure in failures:
                text = self.watcher.settings.redact(failure.error.message)
                if text not in why:
                    why.append(text)
            more = f" (and {len(why) - 2} other reasons)" if len(why) > 2 else ""
            parts.append(f"{len(failures)} of {total} failed: {'; '.join(why[:2])}{more}")
        return " ".join(parts) or None

    def _finish_batch(self, *, error: str | None = None, cancelled: bool = False) -> None:
        batch = self.batch
        if batch is None:  # refused (or cancelled) before it started: nothing to show
            self._batch_total = 0
            self._finish("cancelled" if cancelled else "failed", error=error)
            return
        self._collect_arrivals(batch, final=True)
        self._batch_final = batch.snapshot()
        note = self._failure_words(batch, cancelled=cancelled)
        self.batch_note = note
        failures = note if not cancelled else self._failure_words(batch)
        if cancelled:  # said in ``batch_note``, under the progress bar
            self._finish("cancelled", error=failures, message="")
        elif not self.batch_images:
            self._finish("failed", error=error or note or "No image arrived.")
        else:
            self._finish("done", error=error or failures)

    def batch_failures(self) -> int:
        """Jobs of the panel's batch that failed (a cancelled one is not a failure)."""
        return len(_failures(self.batch)) if self.batch is not None else 0

    def progress(self) -> ProgressSnapshot | None:
        """Where the panel's batch stands, live while it runs; ``None`` after a single image."""
        if not self._batch_total:
            return None
        if self._batch_final is not None:
            return self._batch_final
        batch = self.batch
        if batch is not None:
            snap = batch.snapshot()
            if snap.total:
                return snap
        return ProgressSnapshot(
            total=self._batch_total,
            done=0,
            failed=0,
            running=0,
            elapsed_s=self.elapsed(),
            cost_usd=0.0,
        )

    def progress_text(self) -> str:
        """One line for the progress bar: done and failed of N, elapsed, ETA, cost so far."""
        snap = self.progress()
        if snap is None:
            return ""
        batch = self.batch
        results = batch.results if batch is not None else []
        cancelled = sum(isinstance(r, JobFailure) and r.reason == "cancelled" for r in results)
        parts = [f"{snap.done} of {snap.total} done"]
        if snap.failed - cancelled:
            parts.append(f"{snap.failed - cancelled} failed")
        if cancelled:
            parts.append(f"{cancelled} cancelled")
        parts.append(f"{format_duration(snap.elapsed_s)} elapsed")
        if snap.eta_s is not None and not snap.finished:
            parts.append(f"about {format_duration(snap.eta_s)} left")
        parts.append(f"${snap.cost_usd:.3f}")
        return " · ".join(parts)

    async def wait_idle(self) -> None:
        """Wait until the generation, a pre-warm and pending checks are over."""
        while True:
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    # -- pre-warming ----------------------------------------------------------------------

    def prewarm(self, model: str) -> asyncio.Task[None] | None:
        """Load ``model`` on the server now (``/switch-model``) so the first image is quick;
        on a pool, on the server its next image would go to."""
        status = self.status
        pool = isinstance(self.watcher, PoolWatcher) and self.watcher.is_pool
        url = self.watcher.prewarm_url(model) if pool else self.watcher.settings.selfhosted_url
        if (
            url is None
            or (not pool and status.state is not ServerState.HEALTHY)
            or (not pool and status.health is not None and status.health.current_model == model)
            or (self._prewarm_task is not None and not self._prewarm_task.done())
            or self.running
        ):
            return None
        task = spawn(
            self._run_prewarm(url, model), self._tasks, self._task_failed, name="pixery-prewarm"
        )
        if task is None:  # no event loop here
            return None
        self._say(f"Loading {model} on your server…")
        self._prewarm_task = task
        return task

    async def _run_prewarm(self, url: str, model: str) -> None:
        what = f"loading {model}"
        pool = isinstance(self.watcher, PoolWatcher) and self.watcher.is_pool
        try:
            with self.watcher.work_on(url, what) if pool else self.watcher.own_work(what):
                await SelfHostedClient(url).switch_model(model)
        except PixeryError as exc:
            self._say(f"Could not load {model}: {exc.message}")
        else:
            self._say(f"{model} is loaded on your server.")
        await self.watcher.check_now()

    def _say(self, text: str) -> None:
        self.message = text
        self._notify("message")

    # -- tasks ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        spawn(coro, self._tasks, self._task_failed)

    def _task_failed(self, text: str) -> None:
        self._say(f"Background task failed: {text}")

    def close(self) -> None:
        """Cancel what runs (a batch too) and stop following the server."""
        for task in list(self._tasks):
            task.cancel()
        self._unsubscribe()
        self.watcher.close()
        self._listeners.clear()


def _arrived_image(result: object) -> Generation | None:
    """The image a batch result holds: arrived, or arrived but not archived."""
    if isinstance(result, Generation):
        return result
    if isinstance(result, JobFailure):
        return result.generation
    return None


def _failures(batch: Batch) -> list[JobFailure]:
    return [r for r in batch.results if isinstance(r, JobFailure) and r.reason != "cancelled"]
