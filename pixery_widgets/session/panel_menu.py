"""The panel before it generates: the model menu, the user's choice, the form that fits it.

``PanelMenu`` follows a ``PoolWatcher`` (one ``ServerWatcher`` per self-hosted
server, combined; or a lone ``ServerWatcher``): it rebuilds the menu whenever the
server's status or the keys change (the rule is ``menu``'s), keeps or picks
the selection, says which controls fit the chosen model (``panel_form``), and
pre-warms a local model the user picks (on a pool, on the server its next image
would go to). It also holds what the whole panel
shares: its listeners, its background tasks and its message line.
``PanelController`` adds generating on top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ..core.catalog import ModelSpec, resolve_model
from ..core.errors import UnknownModelError
from ..core.observers import Observers
from ..core.tasks import spawn
from ..core.types import SelfHostedStatus
from .menu import MenuEntry, build_menu, pick_selection
from .panel_form import FormView, StepsCfgPrefill, form_view
from .pool_watcher import PoolWatcher
from .prewarm import prewarm, prewarm_url
from .watcher import ServerWatcher

__all__ = ["PanelMenu"]

Listener = Callable[[Any, str], None]


class PanelMenu:
    """The menu and its selection for one panel; listeners hear ``(panel, what)``.

    ``what`` is ``"status"`` (server status or menu changed), ``"selection"``
    or ``"message"`` here; ``PanelController`` adds its own.
    """

    def __init__(self, watcher: PoolWatcher | ServerWatcher | None = None) -> None:
        self.watcher = watcher if watcher is not None else PoolWatcher()
        self.menu: list[MenuEntry] = []
        self.selection: str | None = None
        self.user_chose = False
        #: A line for the user about background work ("Loading pony on the server…").
        self.message: str = ""
        self._prefill = StepsCfgPrefill()
        self._prewarm_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._observers: Observers[[Any, str]] = Observers()
        self._unsubscribe = self.watcher.subscribe(self._on_watcher)
        self._rebuild()

    # -- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(panel, what)`` on every change; returns the unsubscribe."""
        return self._observers.add(listener)

    def _notify(self, what: str) -> None:
        self._observers.notify(self, what)

    def _say(self, text: str) -> None:
        self.message = text
        self._notify("message")

    # -- menu and selection ---------------------------------------------------------------

    @property
    def status(self) -> SelfHostedStatus:
        return self.watcher.status

    @property
    def running(self) -> bool:
        """Whether a generation runs (none can here; ``PanelController`` says)."""
        return False

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
        return form_view(self.selection, self.spec(), self.status, running=self.running)

    def steps_cfg_to_show(
        self, shown_steps: int | None, shown_cfg: float | None
    ) -> tuple[int | None, float | None] | None:
        """New values for the steps/CFG fields, or ``None`` to leave the user's edits alone."""
        return self._prefill.fill(self.view(), shown_steps, shown_cfg)

    # -- pre-warming ----------------------------------------------------------------------

    def prewarm(self, model: str) -> asyncio.Task[None] | None:
        """Load ``model`` on the server now (``/switch-model``) so the first image is quick;
        on a pool, on the server its next image would go to."""
        url = prewarm_url(self.watcher, model)
        busy = self.running or (self._prewarm_task is not None and not self._prewarm_task.done())
        if url is None or busy:
            return None
        work = prewarm(self.watcher, url, model, self._say)
        task = spawn(work, self._tasks, self._task_failed, name="pixery-prewarm")
        if task is not None:  # None: no event loop here
            self._say(f"Loading {model} on your server…")
            self._prewarm_task = task
        return task

    # -- background tasks -----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        spawn(coro, self._tasks, self._task_failed)

    def _task_failed(self, text: str) -> None:
        self._say(f"Background task failed: {text}")

    async def wait_idle(self) -> None:
        """Wait until the generation, a pre-warm and pending checks are over."""
        while True:
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        """Cancel what runs (a batch too) and stop following the server."""
        for task in list(self._tasks):
            task.cancel()
        self._unsubscribe()
        self.watcher.close()
        self._observers.clear()
