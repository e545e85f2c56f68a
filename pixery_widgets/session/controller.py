"""What the panel decides, as plain Python: the menu and its selection, the form
that fits the chosen model, and running (or cancelling) a generation.

``PanelController`` has no widgets and no HTTP of its own: it follows a
``ServerWatcher``, applies the menu rule of ``menu`` and generates through
``agenerate`` (the same path as ``px.agenerate``). With a count above one it
runs a batch (``panel_batch``: the same scheduling, archive and cancel as
``px.arun_batch``) on consecutive seeds, and hands each image over as it
arrives. Which controls fit the chosen model is ``panel_form``'s rule. The
widgets in ``pixery_widgets.widgets`` only draw what it says and forward clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..core.catalog import SDXL_SIZES, ModelSpec, resolve_model
from ..core.errors import InvalidRequestError, PixeryError, UnknownModelError
from ..core.observers import Observers
from ..core.tasks import spawn
from ..core.types import (
    DEFAULT_IP_ADAPTER_SCALE,
    DEFAULT_LORA_SCALE,
    Generation,
    SelfHostedStatus,
    ServerState,
)
from ..providers.selfhosted import SelfHostedClient
from ..providers.status import DRAWING
from .batch import Batch, start_batch
from .generate import agenerate
from .menu import MenuEntry, build_menu, pick_selection
from .panel_batch import MAX_COUNT, PanelBatch, batch_seeds, check_count
from .panel_form import FormView, StepsCfgPrefill, form_view
from .progress import ProgressSnapshot
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

Listener = Callable[["PanelController", str], None]


@dataclass(frozen=True)
class FormValues:
    """What the user typed and picked, as the widgets hold it."""

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
        watcher: ServerWatcher | None = None,
        *,
        generate: Callable[..., Awaitable[Generation]] = agenerate,
        start: Callable[..., Awaitable[Batch]] = start_batch,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.watcher = watcher if watcher is not None else ServerWatcher()
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
        #: A count above one: the batch it runs (while it runs and after), else ``None``.
        self._batch: PanelBatch | None = None
        self._started_at: float | None = None
        self._last_elapsed: float = 0.0
        self._prefill = StepsCfgPrefill()
        self._prewarm_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._observers: Observers[[PanelController, str]] = Observers()
        self._unsubscribe = self.watcher.subscribe(self._on_watcher)
        self._rebuild()

    # -- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(controller, what)`` on every change; returns the unsubscribe."""
        return self._observers.add(listener)

    def _notify(self, what: str) -> None:
        self._observers.notify(self, what)

    # -- menu and selection ---------------------------------------------------------------

    @property
    def status(self) -> SelfHostedStatus:
        return self.watcher.status

    def _on_watcher(self, _watcher: ServerWatcher) -> None:
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
        return form_view(self.selection, self.spec(), self.status, running=self.running)

    def steps_cfg_to_show(
        self, shown_steps: int | None, shown_cfg: float | None
    ) -> tuple[int | None, float | None] | None:
        """New values for the steps/CFG fields, or ``None`` to leave the user's edits alone."""
        return self._prefill.fill(self.view(), shown_steps, shown_cfg)

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

        Fields the model does not take are left out rather than refused: the
        form hides them, and stale values in hidden fields must not matter.
        """
        spec = self.spec()
        if spec is None:
            raise InvalidRequestError("Choose a model first.")
        width, height = form.size
        kwargs: dict[str, Any] = {"width": width, "height": height}
        if spec.takes_seed:
            kwargs["seed"] = parse_seed(form.seed)
        if spec.takes_negative_prompt and form.negative_prompt.strip():
            kwargs["negative_prompt"] = form.negative_prompt
        if spec.is_local:
            kwargs["steps"] = form.steps
            kwargs["cfg_scale"] = form.cfg_scale
        if form.reference is not None and spec.max_references > 0:
            kwargs["reference"] = form.reference
            if spec.is_local:
                kwargs["ip_adapter_scale"] = form.ip_adapter_scale
        if spec.is_local and form.lora:
            kwargs["lora"] = form.lora
            kwargs["lora_scale"] = form.lora_scale
        return kwargs

    def start_generation(self, form: FormValues) -> asyncio.Task[Generation | None] | None:
        """Start generating in the background; the task is ``generate_task``.

        ``form.count`` above one makes that many images as a batch (see
        ``batch_seeds``); the task then returns the last image that arrived.
        Returns ``None`` when one is already running. Bad input is reported
        like any other failure (``last_error``), not raised at the button.
        """
        if self.running:
            return None
        self._started_at = self._clock()
        self.last_outcome = None
        self._batch = None
        try:
            kwargs = self.request_kwargs(form)
            seeds = self._seeds(form.count, kwargs)
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
        if seeds is not None:
            self._batch = PanelBatch(len(seeds), redact=self.watcher.settings.redact)
        task = spawn(
            self._run(form.prompt, self.selection or "", kwargs, seeds),
            self._tasks,
            self._task_failed,
            name="pixery-generate",
        )
        self.generate_task = task
        self._notify("generation")
        return task

    def _seeds(self, count: int, kwargs: dict[str, Any]) -> list[int | None] | None:
        """A count above one: the batch's seeds (taking ``seed`` out of ``kwargs``)."""
        if check_count(count) == 1:
            return None
        spec = self.spec()
        takes_seed = bool(spec and spec.takes_seed)
        return batch_seeds(count, kwargs.pop("seed", None), takes_seed=takes_seed, rng=self._rng)

    async def _run(
        self, prompt: str, model: str, kwargs: dict[str, Any], seeds: list[int | None] | None
    ) -> Generation | None:
        """One image or a batch, showing busy on our own server meanwhile; every
        outcome (a cancel, a refusal, a bug) is said in words by ``_settle``."""
        spec = self.spec()
        local = bool(spec and spec.is_local)
        settings = self.watcher.settings
        doing = DRAWING if seeds is None else f"drawing {len(seeds)} images for this notebook"
        generation: Generation | None = None
        try:
            with self.watcher.own_work(doing) if local else contextlib.nullcontext():
                if self._batch is None:
                    generation = await self._generate(prompt, model, settings=settings, **kwargs)
                else:
                    await self._batch.run(
                        self._start_batch,
                        prompt,
                        model,
                        seeds or [],
                        {**kwargs, "settings": settings},
                        on_progress=self._on_batch_progress,
                    )
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

    @property
    def batch(self) -> Batch | None:
        """The panel's batch (count above one) while it runs and after; ``None`` otherwise."""
        return self._batch.batch if self._batch is not None else None

    @property
    def batch_images(self) -> list[Generation]:
        """That batch's images in the order they arrived (each once archived)."""
        return self._batch.images() if self._batch is not None else []

    @property
    def batch_note(self) -> str | None:
        """Its failures (and a cancel) in words, e.g. "1 of 4 failed: ..."; ``None`` if none."""
        return self._batch.note() if self._batch is not None else None

    def batch_failures(self) -> int:
        """Jobs of the panel's batch that failed (a cancelled one is not a failure)."""
        return len(self._batch.failures()) if self._batch is not None else 0

    def progress(self) -> ProgressSnapshot | None:
        """Where the panel's batch stands, live while it runs; ``None`` after a single image."""
        return self._batch.snapshot(self.elapsed()) if self._batch is not None else None

    def progress_text(self) -> str:
        """The progress bar's line: done, failed and cancelled of N, elapsed, time left, cost."""
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

    async def wait_idle(self) -> None:
        """Wait until the generation, a pre-warm and pending checks are over."""
        while True:
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    # -- pre-warming ----------------------------------------------------------------------

    def prewarm(self, model: str) -> asyncio.Task[None] | None:
        """Load ``model`` on the server now (``/switch-model``) so the first image is quick."""
        status = self.status
        url = self.watcher.settings.selfhosted_url
        if (
            url is None
            or status.state is not ServerState.HEALTHY
            or (status.health is not None and status.health.current_model == model)
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
        try:
            with self.watcher.own_work(f"loading {model}"):
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
        self._observers.clear()
