"""What the panel decides, as plain Python: the menu and its selection, the form
that fits the chosen model, and running (or cancelling) a generation.

``PanelController`` has no widgets and no HTTP of its own. Its menu side is
``PanelMenu`` (it follows a ``PoolWatcher``, one ``ServerWatcher`` per
self-hosted server, and applies the menu rule); this module turns the form into
a request and generates through ``agenerate`` (the same path as
``px.agenerate``). With a count above one it runs a batch (``PanelBatch``: the
same scheduling, archive and cancel as ``px.arun_batch``) on consecutive seeds,
and hands each image over as it arrives. The X/Y section's rows make that batch
a sweep (``sweep_text.panel_sweep``), whose contact sheet ends up in ``sheet``.
The widgets in ``pixery_widgets.widgets`` only draw what it says and forward clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from ..core import schema
from ..core.catalog import SDXL_SIZES
from ..core.errors import InvalidRequestError, PixeryError
from ..core.tasks import spawn
from ..core.types import (
    DEFAULT_IP_ADAPTER_SCALE,
    DEFAULT_LORA_SCALE,
    Generation,
)
from ..providers.status import DRAWING
from .batch import Batch
from .batch_api import start_batch
from .generate import agenerate
from .panel_batch import MAX_COUNT, PanelBatch, batch_seeds, check_count
from .panel_form import FormView
from .panel_menu import PanelMenu
from .pool_watcher import PoolWatcher
from .progress import ProgressSnapshot
from .sheet import ContactSheet
from .sweep_text import PanelSweep, panel_sweep
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

#: Said when Generate is pressed where no event loop runs (a plain script).
NO_LOOP = (
    "No event loop is running here (a plain script?): "
    "call `await px.agenerate(...)` or `px.generate(...)` instead."
)


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


class PanelController(PanelMenu):
    """The panel's state and rules: its menu (``PanelMenu``) and generating.

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
        self._generate = generate
        self._start_batch = start
        self._clock = clock
        self._rng = rng
        self.generate_task: asyncio.Task[Generation | None] | None = None
        self.last_generation: Generation | None = None
        #: The last generation's failure, in words (``None`` after a success).
        self.last_error: str | None = None
        self.last_outcome: str | None = None  # "done" | "failed" | "cancelled"
        #: A count above one: the batch it runs (while it runs and after), else ``None``.
        self._batch: PanelBatch | None = None
        #: The contact sheet of the panel's last X/Y sweep (``None`` after anything else).
        self.sheet: ContactSheet | None = None
        self._started_at: float | None = None
        self._last_elapsed: float = 0.0
        super().__init__(watcher)

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
        ``batch_seeds``), and ``form.sweep`` (the X/Y section) a sweep of them;
        the task then returns the last image that arrived.
        Returns ``None`` when one is already running. Bad input is reported
        like any other failure (``last_error``), not raised at the button.
        """
        if self.running:
            return None
        self._started_at = self._clock()
        self.last_outcome = None
        self._batch = None
        self.sheet = None
        model = self.selection or ""
        try:
            kwargs = self.request_kwargs(form)
            count = check_count(form.count)
            sweep = panel_sweep(form.prompt, model, kwargs, form.sweep, count=count)
            kwargs = sweep.kwargs if sweep is not None else kwargs
            seeds = self._seeds(count, kwargs, sweep)
        except PixeryError as exc:
            self._finish("failed", error=exc.message)
            return None
        if sweep is not None or seeds is not None:
            total = sweep.images if sweep is not None else len(seeds or ())
            self._batch = PanelBatch(total, redact=self.watcher.settings.redact)
        work = self._run(form.prompt, model, kwargs, seeds, sweep)
        task = spawn(work, self._tasks, self._task_failed, name="pixery-generate")
        if task is None:  # a plain script: no event loop to run it on
            self._batch = None
            self._finish("failed", error=NO_LOOP)
            return None
        self.generate_task = task
        self._notify("generation")
        return task

    def _seeds(
        self, count: int, kwargs: dict[str, Any], sweep: PanelSweep | None = None
    ) -> list[int | None] | None:
        """A count above one, or a sweep: the batch's seeds (taking ``seed`` out of
        ``kwargs``), one list for every cell; ``None`` for one image, or for a sweep
        over seeds (each cell has its own)."""
        if count == 1 and sweep is None:
            return None
        seed = kwargs.pop("seed", None)
        if sweep is not None and "seed" in sweep.vary:
            return None
        spec = self.spec()
        takes_seed = bool(spec and spec.takes_seed)
        return batch_seeds(count, seed, takes_seed=takes_seed, rng=self._rng)

    async def _run(
        self,
        prompt: str,
        model: str,
        kwargs: dict[str, Any],
        seeds: list[int | None] | None,
        sweep: PanelSweep | None = None,
    ) -> Generation | None:
        """One image or a batch (a sweep), showing busy on our own server meanwhile;
        every outcome (a cancel, a refusal, a bug) is said in words by ``_settle``."""
        spec = self.spec()
        local = bool(spec and spec.is_local)
        settings = self.watcher.settings
        panel_batch = self._batch
        doing = (
            DRAWING
            if panel_batch is None
            else f"drawing {panel_batch.total} images for this notebook"
        )
        generation: Generation | None = None
        try:
            with self.watcher.own_work(doing) if local else contextlib.nullcontext():
                if panel_batch is None:
                    generation = await self._generate(prompt, model, settings=settings, **kwargs)
                else:
                    await self._run_batch(panel_batch, prompt, model, kwargs, seeds, sweep)
        except asyncio.CancelledError:
            self._settle(cancelled=True)
            raise
        except PixeryError as exc:
            self._settle(error=settings.redact(exc.message))
            return None
        except Exception as exc:  # a bug: still shown in the panel, in words
            self._settle(error=settings.redact(f"Unexpected error: {type(exc).__name__}: {exc}"))
            return None
        finally:
            if local:
                self._spawn(self.watcher.check_now())  # the loaded model may have changed
        return self._settle(generation)

    async def _run_batch(
        self,
        panel_batch: PanelBatch,
        prompt: str,
        model: str,
        kwargs: dict[str, Any],
        seeds: list[int | None] | None,
        sweep: PanelSweep | None,
    ) -> None:
        """Run the batch to its end; a sweep passes its axes (``vary``) and model(s) on,
        and its contact sheet is drawn once the batch is over (cancelled too)."""
        models: str | list[str] = model
        if sweep is not None:
            kwargs = {**kwargs, **({"vary": sweep.vary} if sweep.vary else {})}
            models = sweep.model if isinstance(sweep.model, str) else list(sweep.model)
        await panel_batch.run(
            self._start_batch,
            prompt,
            models,
            seeds,
            {**kwargs, "settings": self.watcher.settings},
            on_progress=self._on_batch_progress,
        )
        if sweep is not None and panel_batch.batch is not None:
            await self._draw_sheet(panel_batch.batch, sweep)

    async def _draw_sheet(self, batch: Batch, sweep: PanelSweep) -> None:
        """The sweep's contact sheet, drawn and archived off the event loop; a failure is
        said on the message line (the images are kept either way)."""
        try:
            self.sheet = await asyncio.to_thread(batch.grid, x=sweep.x, y=sweep.y)
        except Exception as exc:
            text = exc.message if isinstance(exc, PixeryError) else f"{type(exc).__name__}: {exc}"
            self._say(self.watcher.settings.redact(f"Could not draw the contact sheet: {text}"))

    def _settle(
        self,
        generation: Generation | None = None,
        *,
        cancelled: bool = False,
        error: str | None = None,
    ) -> Generation | None:
        """The run is over: record how it went; returns the image the task gives back."""
        panel_batch = self._batch
        if panel_batch is None:
            if cancelled or error is not None:
                self._finish("cancelled" if cancelled else "failed", error=error)
                return None
            self.last_generation = generation
            self._finish("done")
            return generation
        outcome, why, message = panel_batch.outcome(cancelled=cancelled, error=error)
        if panel_batch.batch is None:
            self._batch = None  # refused before it started: no progress bar to show
        images = panel_batch.images()
        if images:
            self.last_generation = images[-1]
        self._finish(outcome, error=why, message=message)
        return images[-1] if images else None

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
            batch.cancel()
        else:
            task.cancel()
        return True

    # -- a count above one: the batch, read from it ---------------------------------------

    # Each reads ``PanelBatch`` (see there); after a single image there is none.

    @property
    def batch(self) -> Batch | None:
        """The panel's batch (count above one) while it runs and after; ``None`` otherwise."""
        return self._batch.batch if self._batch else None

    @property
    def batch_images(self) -> list[Generation]:
        return self._batch.images() if self._batch else []

    @property
    def batch_note(self) -> str | None:
        return self._batch.note() if self._batch else None

    def batch_failures(self) -> int:
        return len(self._batch.failures()) if self._batch else 0

    def progress(self) -> ProgressSnapshot | None:
        return self._batch.snapshot(self.elapsed()) if self._batch else None

    def progress_text(self) -> str:
        """The progress bar's line (``ProgressSnapshot.summary``); empty without a batch."""
        snap = self.progress()
        return snap.summary() if snap is not None else ""

    def _on_batch_progress(self) -> None:
        """The batch moved on: tell the panel (new images may be in ``batch_images``)."""
        if self.batch is None:  # its first report, before start_batch returned
            return
        images = self.batch_images
        if images:
            self.last_generation = images[-1]
        self._notify("progress")
