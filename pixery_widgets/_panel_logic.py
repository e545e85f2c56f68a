"""What the panel decides, as plain Python: the menu and its selection, the form
that fits the chosen model, and running (or cancelling) one generation.

``PanelController`` has no widgets and no HTTP of its own: it follows a
``ServerWatcher``, applies the menu rule of ``_menu`` and generates through
``_api.agenerate`` (the same path as ``px.agenerate``). The widgets in
``pixery_widgets.widgets`` only draw what it says and forward clicks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._api import agenerate
from ._catalog import SDXL_SIZES, ModelSpec, resolve_model
from ._errors import InvalidRequestError, PixeryError, UnknownModelError
from ._menu import MenuEntry, build_menu, pick_selection
from ._types import Generation, SelfHostedStatus, ServerState
from ._watcher import ServerWatcher
from .providers.selfhosted import SelfHostedClient

__all__ = ["FormValues", "FormView", "PanelController", "parse_seed"]

DEFAULT_LORA_SCALE = 0.8
DEFAULT_IP_ADAPTER_SCALE = 0.7

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


class PanelController:
    """The panel's state and rules; widgets subscribe and render.

    Listeners get ``(controller, what)`` with ``what`` one of ``"status"``
    (server status or menu changed), ``"selection"``, ``"generation"`` (one
    started, finished, failed or was cancelled) and ``"message"``.
    """

    def __init__(
        self,
        watcher: ServerWatcher | None = None,
        *,
        generate: Callable[..., Awaitable[Generation]] = agenerate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watcher = watcher if watcher is not None else ServerWatcher()
        self._generate = generate
        self._clock = clock
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

        Returns ``None`` when one is already running. Bad input is reported
        like any other failure (``last_error``), not raised at the button.
        """
        if self.running:
            return None
        model = self.selection
        self._started_at = self._clock()
        self.last_outcome = None
        try:
            kwargs = self.request_kwargs(form)
        except PixeryError as exc:
            self._finish("failed", error=exc.message)
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._finish(
                "failed",
                error="No event loop is running here (a plain script?): "
                "call `await px.agenerate(...)` or `px.generate(...)` instead.",
            )
            return None
        task = loop.create_task(
            self._run_generation(form.prompt, model or "", kwargs), name="pixery-generate"
        )
        self.generate_task = task
        self._keep(task)
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

    def _finish(self, outcome: str, *, error: str | None = None) -> None:
        if self._started_at is not None:
            self._last_elapsed = self._clock() - self._started_at
        self.last_outcome = outcome
        self.last_error = error
        if outcome == "cancelled":
            self.message = "Generation cancelled."
        self.generate_task = None
        self._notify("generation")

    def cancel(self) -> bool:
        """Cancel the running generation; False if none runs."""
        task = self.generate_task
        if task is None or task.done():
            return False
        task.cancel()
        return True

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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        task = loop.create_task(self._run_prewarm(url, model), name="pixery-prewarm")
        self._say(f"Loading {model} on your server…")
        self._prewarm_task = task
        self._keep(task)
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

    def _spawn(self, coro: Awaitable[Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        except RuntimeError:
            if asyncio.iscoroutine(coro):
                coro.close()
            return
        self._keep(task)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a reference until done, and show an unexpected exception instead of losing it."""
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._say(f"Background task failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Cancel what runs and stop following the server."""
        for task in list(self._tasks):
            task.cancel()
        self._unsubscribe()
        self.watcher.close()
        self._listeners.clear()
