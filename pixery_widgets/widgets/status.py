"""The self-hosted server's status: a coloured dot, one line, and a refresh button.

With several servers, the line is the pool's ("2 of 3 servers up") and a dot
and a line per server follow it (``server_lines``).
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

import ipywidgets as w

from ..core.tasks import spawn
from ..core.types import ServerState
from ..session.pool_watcher import PoolWatcher
from ..session.watcher import ServerWatcher, next_delay
from .server_lines import idle_words, pool_status_text, servers_html, spent_words
from .styles import Styles

__all__ = ["StatusIndicator", "status_text"]


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def status_text(watcher: PoolWatcher | ServerWatcher) -> tuple[str, str]:
    """(main line, detail line) in words: the status's own ``headline()``, plus what
    only the watcher knows (when it checks again, idle time and its cost, a paused
    schedule, its errors); a pool's are ``pool_status_text``."""
    if isinstance(watcher, PoolWatcher) and watcher.is_pool:
        return pool_status_text(watcher)
    status = watcher.status
    state = status.state
    line, detail = status.headline()
    if state is ServerState.NOT_CONFIGURED:
        detail += " Then press Refresh."
    elif state is ServerState.OFFLINE:
        detail = f"{detail} · checking again{_next_check(watcher)} — or press Refresh"
    elif state is ServerState.HEALTHY:
        rate = watcher.settings.selfhosted_cost_per_hour
        parts = idle_words(watcher.idle_seconds(), watcher.seconds_until_shutdown(), rate)
        if rate and isinstance(watcher, PoolWatcher) and status.url:
            parts.append(spent_words(watcher.spent_usd(status.url), watcher.first_seen(status.url)))
        if watcher.paused:
            parts.append("auto-check paused so it can idle — press Refresh")
        parts.append(detail)
        detail = " · ".join(p for p in parts if p)
    if watcher.checking and state is not ServerState.CHECKING:
        line += " (checking…)"
    if watcher.error:
        detail = f"{detail} · {watcher.error}" if detail else watcher.error
    return line, detail


def _next_check(watcher: PoolWatcher | ServerWatcher) -> str:
    delay = next_delay(watcher.status, watcher.failures)
    return f" in {delay:.0f} s" if delay else ""


class StatusIndicator(w.HBox):
    """Shows a ``PoolWatcher`` (or a ``ServerWatcher``); alone it makes and starts its own.

    The refresh button re-reads SELFHOSTED_API_URL and the ``.env`` files
    and checks at once (as a background task, so the cell stays free).
    """

    def __init__(self, watcher: PoolWatcher | ServerWatcher | None = None, **kwargs: Any) -> None:
        self.watcher = watcher if watcher is not None else PoolWatcher()
        self.text = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="0"))
        self.refresh_button = w.Button(
            description="Refresh",
            tooltip="Re-read SELFHOSTED_API_URL and .env, and check the server now",
            layout=w.Layout(width="auto", flex="0 0 auto"),
        )
        self.refresh_button.on_click(self._on_refresh)
        super().__init__(
            [self.text, self.refresh_button, Styles()],
            layout=w.Layout(align_items="center", width="100%", justify_content="space-between"),
            **kwargs,
        )
        self.add_class("pixery")
        self.add_class("pixery-status")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe = self.watcher.subscribe(lambda _w: self.update())
        self.update()
        if watcher is None:
            self.watcher.start()

    @property
    def state(self) -> ServerState:
        return self.watcher.status.state

    def update(self) -> None:
        """Draw the watcher's status now."""
        line, detail = status_text(self.watcher)
        below = (
            f'<br><span class="pixery-status-detail">{html.escape(detail)}</span>' if detail else ""
        )
        watcher = self.watcher
        servers = (
            servers_html(watcher) if isinstance(watcher, PoolWatcher) and watcher.is_pool else ""
        )
        self.text.value = (  # the dot's colour follows data-state (static/widgets.css)
            '<div class="pixery-status-text">'
            f'<span class="pixery-dot" data-state="{self.state.value}" aria-hidden="true"></span>'
            '<span class="pixery-status-words">'
            f'<span class="pixery-status-line">{html.escape(line)}</span>{below}</span></div>'
            f"{servers}"
        )

    def _on_refresh(self, _button: w.Button) -> None:
        task = spawn(self.watcher.refresh(), self._tasks, self._on_error)
        if task is None:  # no running loop (a plain script): re-read the settings at least
            self.watcher.reload_settings()

    def _on_error(self, text: str) -> None:
        self.watcher.error = f"refresh failed: {text}"
        self.update()

    def close(self) -> None:
        self._unsubscribe()
        super().close()
