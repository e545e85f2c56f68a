"""Watching the self-hosted server for one panel: settings, status, re-checks.

``ServerWatcher`` is session logic, not a widget: it holds the current
``Settings`` and ``SelfHostedStatus``, re-checks on a schedule (every 30 s
while the server answers, backing off 5→10→20→40→60 s while it does not, so a
server started after the notebook opened shows up by itself), and tells its
listeners about every change.

Every request resets the server's idle clock, so checking forever would keep a
rented GPU awake (and billed) for as long as a notebook stays open. After
``QUIET_AFTER`` seconds without use from this panel (no generation, no
refresh), automatic checks of a healthy server pause; the next use resumes them.

It never checks while this process has its own work running on the server
(a generation, a model switch): the server blocks while it draws, so such a
check would only time out. It shows ``busy`` instead.

A check publishes twice: the state as soon as ``/health`` has answered (with
the previous check's models and LoRAs, so the menu does not flicker), then the
fresh details when they come, within the check's 2.5 s
(``providers.status.CHECK_BUDGET``). A custom ``check`` publishes once, at its end.

Outside a running event loop (a plain script) ``start()`` only notes that a
check is due; the first ``await watcher.refresh()`` runs it. No thread is
started behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..core.config import Settings, load_settings
from ..core.observers import Observers
from ..core.tasks import spawn
from ..core.types import SelfHostedStatus, ServerState
from ..providers.selfhosted import generations_in_flight
from ..providers.status import (
    acheck_with_early_health,
    busy_status,
    checking_status,
    known_models,
)

__all__ = ["HEALTHY_INTERVAL", "OFFLINE_BACKOFF", "QUIET_AFTER", "ServerWatcher", "next_delay"]

#: Seconds between checks while the server answers.
HEALTHY_INTERVAL = 30.0
#: Seconds between checks while it does not: one step further after each failure.
OFFLINE_BACKOFF = (5.0, 10.0, 20.0, 40.0, 60.0)
#: Seconds without use after which checks of a healthy server pause (see above).
QUIET_AFTER = 600.0

Listener = Callable[["ServerWatcher"], None]


def next_delay(status: SelfHostedStatus, failures: int) -> float | None:
    """Seconds until the next automatic check; ``None``: no server to watch.

    ``failures`` is how many checks in a row found the server offline.
    """
    if status.state is ServerState.NOT_CONFIGURED:
        return None
    if status.state is ServerState.OFFLINE:
        return OFFLINE_BACKOFF[min(max(failures, 1), len(OFFLINE_BACKOFF)) - 1]
    return HEALTHY_INTERVAL


class ServerWatcher:
    """The self-hosted server's status as one panel sees it, kept up to date.

    Everything that touches the outside world is injectable for tests:
    ``load`` (settings), ``check`` (the health check; by default
    ``acheck_with_early_health``, publishing the state early), ``sleep`` and ``clock``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        load: Callable[[], Settings] = load_settings,
        check: Callable[[Settings], Awaitable[SelfHostedStatus]] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        quiet_after: float = QUIET_AFTER,
    ) -> None:
        self._load = load
        self._check = check
        self._sleep = sleep
        self._clock = clock
        self.settings: Settings = settings if settings is not None else load()
        self.status: SelfHostedStatus = checking_status(self.settings)
        #: True while a check is on its way (the status shown is the previous one).
        self.checking = self.status.state is ServerState.CHECKING
        #: Checks in a row that found the server offline (drives the back-off).
        self.failures = 0
        #: A problem of the watcher itself (a bug, not the server), in words.
        self.error: str | None = None
        #: When the current status arrived, on ``clock``.
        self.checked_at: float | None = None
        self._quiet_after = quiet_after
        self._last_used = clock()
        #: True when automatic checks paused so the idle server can shut itself down.
        self.paused = False
        self._own_work: list[str] = []
        self._observers: Observers[[ServerWatcher]] = Observers()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(watcher)`` on every change; returns the unsubscribe function."""
        return self._observers.add(listener)

    def _notify(self) -> None:
        self._observers.notify(self)

    # -- own work on the server -----------------------------------------------------------

    @contextlib.contextmanager
    def own_work(self, what: str) -> Iterator[None]:
        """Mark work of ours on the server (e.g. "loading pony"): show busy, don't check."""
        self._own_work.append(what)
        self.note_use()
        if self.status.state in (ServerState.HEALTHY, ServerState.BUSY):
            self._set(self._busy_status(), checking=False)
        try:
            yield
        finally:
            self._own_work.remove(what)
            self.note_use()

    def note_use(self) -> None:
        """The user did something with the server: keep (or start again) checking it."""
        self._last_used = self._clock()
        if self.paused and not self._closed:
            self.start(check_first=False)

    def _in_flight(self) -> bool:
        url = self.settings.selfhosted_url
        return bool(url and (self._own_work or generations_in_flight(url)))

    def _busy_status(self, reason: str | None = None) -> SelfHostedStatus:
        """Busy with our own work (or ``reason``), keeping what the server said last."""
        reason = reason or (self._own_work[-1] if self._own_work else None)
        return busy_status(self.settings.selfhosted_url, reason, previous=self.status)

    # -- checking -------------------------------------------------------------------------

    def start(self, *, check_first: bool = True) -> bool:
        """Start the periodic checks on the running loop; False when there is none.

        ``check_first=False`` waits one interval first (a check has just run).
        """
        if self._closed:
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self.paused:
            self.paused = False
            self._notify()
        if self._task is None or self._task.done():
            self._task = spawn(
                self._run(check_first), self._tasks, self._task_failed, name="pixery-server-watcher"
            )
        return True

    @property
    def polling(self) -> bool:
        return self._task is not None and not self._task.done()

    async def refresh(self, *, reload: bool = True) -> SelfHostedStatus:
        """Check now; ``reload`` re-reads SELFHOSTED_API_URL, the keys and the ``.env`` files."""
        self._last_used = self._clock()
        if reload:
            self.reload_settings()
        status = await self.check_now()
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the schedule follows this fresh answer
            self._task = None
        self.start(check_first=False)
        return status

    def reload_settings(self) -> None:
        """Read the settings afresh; a changed URL starts over at "checking…"."""
        new = self._load()
        old = self.settings
        self.settings = new
        if (new.selfhosted_url, new.url_error) != (old.selfhosted_url, old.url_error):
            self.failures = 0
            fresh = checking_status(new)
            self._set(fresh, checking=fresh.state is ServerState.CHECKING)
            return
        self._notify()  # keys may have changed: the menu depends on them

    async def check_now(self) -> SelfHostedStatus:
        """One check (never two at once); busy without asking while our work is in flight."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # a script may use several loops
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            settings = self.settings
            if checking_status(settings).state is ServerState.NOT_CONFIGURED:
                self._set(checking_status(settings), checking=False)
                return self.status
            if self._in_flight():
                self._set(self._busy_status(), checking=False)
                return self.status
            self.checking = True
            self._notify()
            try:
                status = await self._run_check(settings)
            except asyncio.CancelledError:
                self.checking = False
                raise
            except Exception as exc:  # a bug, not the server: show it, keep watching
                self.error = f"status check failed: {type(exc).__name__}: {exc}"
                status = SelfHostedStatus(
                    ServerState.OFFLINE,
                    url=settings.selfhosted_url,
                    reason="status check failed (see the message below)",
                    known_models=known_models(settings.selfhosted_url),
                )
            else:
                self.error = None
            if settings is not self.settings:  # reloaded meanwhile: this answer is stale
                self.checking = False
                return self.status
            if status.state is ServerState.BUSY and self.status.reachable:
                status = self._busy_status(status.reason)
            self.failures = self.failures + 1 if status.state is ServerState.OFFLINE else 0
            self._set(status, checking=False)
            return status

    async def _run_check(self, settings: Settings) -> SelfHostedStatus:
        if self._check is not None:
            return await self._check(settings)
        return await acheck_with_early_health(
            settings, on_health=lambda status: self._healthy_early(settings, status)
        )

    def _healthy_early(self, settings: Settings, status: SelfHostedStatus) -> None:
        """``/health`` answered: publish the state now; the details follow."""
        if settings is not self.settings:  # reloaded meanwhile: this answer is stale
            return
        prev = self.status
        if prev.url == status.url and prev.health is not None:
            status = dataclasses.replace(status, models=prev.models, loras=prev.loras)
        self.failures = 0
        self._set(status, checking=True)

    def _set(self, status: SelfHostedStatus, *, checking: bool) -> None:
        self.status = status
        self.checking = checking
        self.checked_at = self._clock()
        self._notify()

    async def _run(self, check_first: bool = True) -> None:
        """The polling loop: check, wait as ``next_delay`` says, again."""
        while not self._closed:
            if check_first:
                await self.check_now()
            check_first = True
            delay = next_delay(self.status, self.failures)
            if delay is None:
                return
            if self.status.reachable and self._clock() - self._last_used >= self._quiet_after:
                self.paused = True  # let the idle server shut itself down
                self._notify()
                return
            await self._sleep(delay)

    def _task_failed(self, text: str) -> None:
        self.error = f"status checks stopped: {text}"
        self._notify()

    # -- for display ----------------------------------------------------------------------

    def seconds_until_shutdown(self) -> float | None:
        """When the server will stop itself for idleness, counted from its last answer."""
        health = self.status.health
        if health is None or health.seconds_until_shutdown is None:
            return None
        waited = self._clock() - self.checked_at if self.checked_at is not None else 0.0
        if self.status.state is ServerState.BUSY:
            return health.idle_timeout_minutes * 60 if health.idle_timeout_minutes else None
        return max(0.0, health.seconds_until_shutdown - waited)

    def idle_seconds(self) -> float | None:
        """How long the server has been idle, now (its last answer plus the time since)."""
        health = self.status.health
        if health is None or health.idle_seconds is None:
            return None
        if self.status.state is ServerState.BUSY:
            return 0.0
        waited = self._clock() - self.checked_at if self.checked_at is not None else 0.0
        return health.idle_seconds + waited

    def close(self) -> None:
        """Stop checking (the panel was closed)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._observers.clear()
