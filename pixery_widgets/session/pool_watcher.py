"""Watching every self-hosted server of a panel: one ``ServerWatcher`` each, combined.

``PoolWatcher`` is what a panel follows. With one server (or none) it is a thin
shell around one ``ServerWatcher`` and behaves exactly as that does. With
several, each server has a watcher of its own, so each is re-checked, and backs
off while it is offline, on its own schedule; the pool's ``status`` combines
them (healthy when any is, "2 of 3 servers up") and keeps each one's status in
``status.servers`` for the menu and the status lines.

A server of a pool shows "drawing" while this kernel has an image in flight
there (whoever sent it: the panel, a cell, a batch), and is checked again
shortly after its last one ends, because the model it holds may have changed.

Reading the settings again (Refresh) may add or drop servers; the list is
announced, so a batch running meanwhile takes on a server added to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..core.config import Settings, load_settings
from ..core.observers import Observers
from ..core.tasks import spawn
from ..core.types import GenerationRequest, SelfHostedStatus, ServerState
from ..providers.in_flight import generations_in_flight, watch_in_flight
from ..providers.pool import rank_servers, view_of
from ..providers.servers import (
    acheck_server,
    announce_servers,
    combine_statuses,
    sighting,
    spent_usd,
)
from ..providers.status import DRAWING
from .watcher import QUIET_AFTER, ServerWatcher

__all__ = ["SETTLE_SECONDS", "PoolWatcher"]

#: After a server's last image in flight ends, wait this long, then check it.
SETTLE_SECONDS = 0.5

Listener = Callable[["PoolWatcher"], None]


class _Member:
    """One server of the pool and its watcher."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.watcher: ServerWatcher
        self.settling = False


class PoolWatcher:
    """The self-hosted servers' status as one panel sees it, kept up to date.

    The same interface as ``ServerWatcher`` (``status``, ``settings``, ``refresh``,
    ``own_work``, ``subscribe``…); ``members`` are the per-server watchers of a
    pool (empty for one server). ``load``, ``check``, ``sleep`` and ``clock`` are
    injectable for tests, as for ``ServerWatcher``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        load: Callable[[], Settings] = load_settings,
        check: Callable[[Settings], Awaitable[SelfHostedStatus]] = acheck_server,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        quiet_after: float = QUIET_AFTER,
    ) -> None:
        self._load = load
        self._child_kwargs = {
            "check": check,
            "sleep": sleep,
            "clock": clock,
            "quiet_after": quiet_after,
        }
        self.settings: Settings = settings if settings is not None else load()
        self._members: list[_Member] = []
        self._observers: Observers[[PoolWatcher]] = Observers()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False
        self._error: str | None = None
        self._status: SelfHostedStatus
        self._unwatch: Callable[[], None] | None = None
        self._arrange(self.settings)

    @property
    def _sleep(self) -> Callable[[float], Awaitable[Any]]:
        """How the servers' watchers wait between checks (``ServerWatcher._sleep``)."""
        return self._child_kwargs["sleep"]  # type: ignore[return-value]

    @_sleep.setter
    def _sleep(self, sleep: Callable[[float], Awaitable[Any]]) -> None:  # tests shorten it
        self._child_kwargs["sleep"] = sleep
        for member in self._members:
            member.watcher._sleep = sleep

    # -- members --------------------------------------------------------------------------

    @property
    def is_pool(self) -> bool:
        return len(self._members) > 1

    @property
    def members(self) -> list[ServerWatcher]:
        """Each server's own watcher, in SELFHOSTED_API_URL's order (a pool only)."""
        return [m.watcher for m in self._members] if self.is_pool else []

    def _settings_for(self, member: _Member) -> Settings:
        if len(self.settings.selfhosted_urls) <= 1 or member.url is None:
            return self.settings  # one server: its watcher sees everything, as ever
        return self.settings.for_server(member.url)

    def _new_member(self, url: str | None) -> _Member:
        member = _Member(url)
        member.watcher = ServerWatcher(
            self._settings_for(member),
            load=lambda: self._settings_for(member),
            **self._child_kwargs,
        )
        member.watcher.subscribe(lambda _w: self._changed())
        if self._started:
            member.watcher.start()
        return member

    def _arrange(self, settings: Settings) -> None:
        """Match the members to the servers ``settings`` lists, keeping those that stay."""
        urls: list[str | None] = [] if settings.url_error else list(settings.selfhosted_urls)
        if len(urls) <= 1 and len(self._members) <= 1:
            # one server (or none) before and after: one watcher that reloads itself, as ever
            if not self._members:
                self._members = [self._new_member(urls[0] if urls else None)]
            else:
                self._members[0].url = urls[0] if urls else None
                self._members[0].watcher.reload_settings()
        else:
            old = {m.url: m for m in self._members}
            members = []
            for url in urls or [None]:
                member = old.pop(url, None)
                if member is None:
                    member = self._new_member(url)
                else:  # a pool's member sees only its server; a lone one everything
                    member.watcher.reload_settings()
                members.append(member)
            for gone in old.values():
                gone.watcher.close()
            self._members = members
        if self.is_pool and self._unwatch is None:
            self._unwatch = watch_in_flight(self._on_in_flight)
        elif not self.is_pool and self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._recombine()

    # -- the combined view ----------------------------------------------------------------

    def _recombine(self) -> None:
        if self.is_pool:
            self._status = combine_statuses([m.watcher.status for m in self._members])
        else:
            self._status = self._members[0].watcher.status

    def _changed(self) -> None:
        self._recombine()
        self._observers.notify(self)

    @property
    def status(self) -> SelfHostedStatus:
        return self._status

    @property
    def checking(self) -> bool:
        return any(m.watcher.checking for m in self._members)

    @property
    def failures(self) -> int:
        """Offline checks in a row: the fewest of any offline server (its next check is soonest)."""
        counts = [m.watcher.failures for m in self._members if m.watcher.failures]
        return min(counts) if counts else 0

    @property
    def paused(self) -> bool:
        return all(m.watcher.paused for m in self._members)

    @property
    def checked_at(self) -> float | None:
        times = [m.watcher.checked_at for m in self._members if m.watcher.checked_at is not None]
        return max(times) if times else None

    @property
    def error(self) -> str | None:
        return self._error or next(
            (m.watcher.error for m in self._members if m.watcher.error), None
        )

    @error.setter
    def error(self, text: str | None) -> None:
        self._error = text

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(pool)`` on every change; returns the unsubscribe function."""
        return self._observers.add(listener)

    # -- checking -------------------------------------------------------------------------

    def start(self, *, check_first: bool = True) -> bool:
        """Start every server's periodic checks; False outside a running event loop."""
        started = [m.watcher.start(check_first=check_first) for m in self._members]
        self._started = self._started or any(started)
        return any(started)

    @property
    def polling(self) -> bool:
        return any(m.watcher.polling for m in self._members)

    async def refresh(self, *, reload: bool = True) -> SelfHostedStatus:
        """Check every server now; ``reload`` re-reads SELFHOSTED_API_URL, keys and ``.env``."""
        if reload:
            self.reload_settings()
        await asyncio.gather(*(m.watcher.refresh(reload=False) for m in self._members))
        self._started = True
        return self.status

    def reload_settings(self) -> None:
        """Read the settings afresh; servers added or dropped are added or dropped here, and
        the list is announced to running batches."""
        self.settings = self._load()
        self._arrange(self.settings)
        announce_servers(self.settings)
        self._changed()

    async def check_now(self) -> SelfHostedStatus:
        """One check of every server, all at once."""
        await asyncio.gather(*(m.watcher.check_now() for m in self._members))
        return self.status

    # -- our own work ---------------------------------------------------------------------

    @contextlib.contextmanager
    def own_work(self, what: str) -> Iterator[None]:
        """Work of ours on the server (one server: shown busy). A pool's servers show what
        they draw by themselves, so there it only counts as use."""
        if not self.is_pool:
            with self._members[0].watcher.own_work(what):
                yield
            return
        self.note_use()
        try:
            yield
        finally:
            self.note_use()

    def work_on(self, url: str, what: str) -> contextlib.AbstractContextManager[None]:
        """Work of ours on the server at ``url`` (e.g. loading a model there): shown busy."""
        member = next((m for m in self._members if m.url == url), None)
        if member is None or not self.is_pool:
            return self.own_work(what)
        return member.watcher.own_work(what)

    def note_use(self) -> None:
        for member in self._members:
            member.watcher.note_use()

    def _on_in_flight(self, url: str, count: int) -> None:
        """An image started or ended on ``url``: show its server drawing at once, and check
        it once nothing has been in flight there for ``SETTLE_SECONDS`` (images back to
        back change nothing on the display)."""
        member = next((m for m in self._members if m.url == url), None)
        if member is None or self._closed:
            return
        if count and member.watcher.status.state is not ServerState.BUSY:
            with member.watcher.own_work(DRAWING):
                pass  # shown busy now; no check is made while the count is above 0
        elif not count and not member.settling:
            member.settling = True
            if spawn(self._settle(member), self._tasks, self._task_failed) is None:
                member.settling = False

    async def _settle(self, member: _Member) -> None:
        try:
            await asyncio.sleep(SETTLE_SECONDS)
        finally:
            member.settling = False
        if member.url is None or generations_in_flight(member.url) or member not in self._members:
            return
        await member.watcher.check_now()  # the model it holds may have changed

    def _task_failed(self, text: str) -> None:
        self._error = f"status check failed: {text}"
        self._changed()

    def prewarm_url(self, model: str) -> str | None:
        """The server to load ``model`` on now, so that its next image starts at once: the
        one the next image would go to, when that one is healthy, idle and holds another
        model; None when there is nothing to gain (or no server can take it)."""
        if not self.is_pool:
            status, url = self.status, self.settings.selfhosted_url
            current = status.health.current_model if status.health else None
            return url if status.state is ServerState.HEALTHY and current != model else None
        request = GenerationRequest("", model, "selfhosted")
        views = [view_of(m.url or "", m.watcher.status, request) for m in self._members]
        ranked = rank_servers(views)
        best = next((v for v in views if ranked and v.url == ranked[0]), None)
        member = next((m for m in self._members if best and m.url == best.url), None)
        if best is None or member is None or best.loaded or best.queue:
            return None
        return best.url if member.watcher.status.state is ServerState.HEALTHY else None

    # -- for display ----------------------------------------------------------------------

    def seconds_until_shutdown(self) -> float | None:
        return None if self.is_pool else self._members[0].watcher.seconds_until_shutdown()

    def idle_seconds(self) -> float | None:
        return None if self.is_pool else self._members[0].watcher.idle_seconds()

    def spent_usd(self, url: str | None = None) -> float:
        """What the servers' hours (or one server's) have cost since this kernel first saw
        them up, at SELFHOSTED_COST_PER_HOUR."""
        rate = self.settings.selfhosted_cost_per_hour
        urls = [url] if url is not None else list(self.settings.selfhosted_urls)
        return sum(spent_usd(u, rate) for u in urls)

    def first_seen(self, url: str) -> float | None:
        """When (``time.time``) this kernel first saw the server at ``url`` up."""
        seen = sighting(url)
        return seen.first_up if seen is not None else None

    def close(self) -> None:
        """Stop checking (the panel was closed)."""
        self._closed = True
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for member in self._members:
            member.watcher.close()
        for task in list(self._tasks):
            task.cancel()
        self._observers.clear()
