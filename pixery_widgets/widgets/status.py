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

__all__ = ["StatusIndicator", "status_text"]

#: Dot colours: JupyterLab's theme colours (readable in light and dark), with fallbacks.
DOT_COLOURS = {
    ServerState.NOT_CONFIGURED: "var(--jp-layout-color4, #9e9e9e)",
    ServerState.CHECKING: "var(--jp-brand-color1, #1976d2)",
    ServerState.HEALTHY: "var(--jp-success-color1, #388e3c)",
    ServerState.BUSY: "var(--jp-warn-color1, #f57c00)",
    ServerState.OFFLINE: "var(--jp-error-color1, #d32f2f)",
}

NOT_CONFIGURED_HINT = (
    "Set SELFHOSTED_API_URL (in the environment or a .env file) to your server's address, "
    "e.g. http://203.0.113.7:8000, then press Refresh."
)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def status_text(watcher: PoolWatcher | ServerWatcher) -> tuple[str, str]:
    """(main line, detail line) in words for the watcher's current status."""
    if isinstance(watcher, PoolWatcher) and watcher.is_pool:
        return pool_status_text(watcher)
    status = watcher.status
    state = status.state
    if state is ServerState.NOT_CONFIGURED:
        line = "Self-hosted server: not configured"
        detail = status.reason or NOT_CONFIGURED_HINT
        if status.reason:
            detail += " " + NOT_CONFIGURED_HINT
    elif state is ServerState.CHECKING:
        line, detail = f"Checking your server at {status.display_url}…", ""
    elif state is ServerState.BUSY:
        line = f"Busy: {status.reason or 'drawing an image'}"
        detail = status.display_url or ""
    elif state is ServerState.OFFLINE:
        line = f"Offline: {status.reason or 'no answer'}"
        delay = _next_check(watcher)
        detail = f"{status.display_url} · checking again{delay} — or press Refresh"
    else:
        line = status.summary()
        rate = watcher.settings.selfhosted_cost_per_hour
        parts = idle_words(watcher.idle_seconds(), watcher.seconds_until_shutdown(), rate)
        if rate and isinstance(watcher, PoolWatcher) and status.url:
            parts.append(spent_words(watcher.spent_usd(status.url), watcher.first_seen(status.url)))
        if watcher.paused:
            parts.append("auto-check paused so it can idle — press Refresh")
        parts.append(status.display_url or "")
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
            [self.text, self.refresh_button],
            layout=w.Layout(align_items="center", width="100%", justify_content="space-between"),
            **kwargs,
        )
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
        colour = DOT_COLOURS[self.watcher.status.state]
        self.text.value = (
            '<div class="pixery-status-text" style="display:flex;gap:8px;align-items:baseline;'
            'line-height:1.35;font-size:var(--jp-ui-font-size1,13px);">'
            f'<span class="pixery-dot" data-state="{self.state.value}" aria-hidden="true" '
            f'style="flex:0 0 auto;display:inline-block;width:10px;height:10px;'
            f'border-radius:50%;background:{colour};position:relative;top:1px"></span>'
            '<span style="min-width:0">'
            f'<span class="pixery-status-line" style="color:var(--jp-ui-font-color1,#212121)">'
            f"{html.escape(line)}</span>"
            + (
                '<br><span class="pixery-status-detail" '
                'style="color:var(--jp-ui-font-color2,#616161);'
                f'font-size:var(--jp-ui-font-size0,11px)">{html.escape(detail)}</span>'
                if detail
                else ""
            )
            + "</span></div>"
            + (
                servers_html(self.watcher)
                if isinstance(self.watcher, PoolWatcher) and self.watcher.is_pool
                else ""
            )
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
