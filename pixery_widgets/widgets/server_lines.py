"""The words and lines the status shows for several servers, and what GPU hours cost.

With a pool, ``StatusIndicator`` shows the combined line ("2 of 3 servers up")
and under it a dot and a line per server: its number (as SELFHOSTED_API_URL
lists it, and as the menu's "loaded on 2" counts), GPU, loaded model, drawing
or idle, when it shuts itself down, and, with SELFHOSTED_COST_PER_HOUR, what
it has cost since this kernel first saw it and what idling until its shutdown
costs. Pure functions of the watcher, so they are tested without a front end.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from ..core.types import ServerState
from ..session.ledger import usd

if TYPE_CHECKING:
    from ..session.pool_watcher import PoolWatcher
    from ..session.watcher import ServerWatcher

__all__ = ["idle_words", "pool_status_text", "server_lines", "servers_html", "spent_words"]


def idle_words(idle: float | None, left: float | None, rate: float | None) -> list[str]:
    """ "idle 3 min", "shuts itself down in 57 min (idling until then: $0.29)"."""
    from .status import _minutes as minutes

    parts = []
    if idle is not None:
        parts.append(f"idle {minutes(idle)}")
    if left is not None:
        if left <= 0:
            parts.append("shutting down")
        elif rate:
            parts.append(
                f"shuts itself down in {minutes(left)} (idling until then: {usd(rate * left / 3600)})"
            )
        else:
            parts.append(f"shuts itself down in {minutes(left)}")
    return parts


def spent_words(spent: float, since: float | None) -> str:
    """ "$0.42 since 14:02": what a server's hours have cost since first seen up."""
    when = f" since {time.strftime('%H:%M', time.localtime(since))}" if since else ""
    return f"{usd(spent)}{when}"


def _member_words(pool: PoolWatcher, watcher: ServerWatcher) -> tuple[str, str]:
    """(what the server is doing, its URL) for one server of the pool."""
    status = watcher.status
    url = status.display_url or watcher.settings.display_url or ""
    rate = pool.settings.selfhosted_cost_per_hour
    raw = watcher.settings.selfhosted_url or ""
    if status.state is ServerState.CHECKING:
        return "checking…", url
    if status.state is ServerState.OFFLINE:
        from ..session.watcher import next_delay

        delay = next_delay(status, watcher.failures)
        again = f" · checking again in {delay:.0f} s" if delay else ""
        return f"offline: {status.reason or 'no answer'}{again}", url
    parts = []
    if status.state is ServerState.BUSY:
        parts.append(status.reason or "drawing")
    health = status.health
    if health is not None:
        parts.append(health.gpu_name or "unknown GPU")
        parts.append(
            f"{health.current_model} loaded" if health.current_model else "no model loaded"
        )
    if status.state is ServerState.HEALTHY:
        parts += idle_words(watcher.idle_seconds(), watcher.seconds_until_shutdown(), rate)
    if rate:
        parts.append(spent_words(pool.spent_usd(raw), pool.first_seen(raw)))
    if watcher.checking:
        parts.append("checking…")
    return " · ".join(parts), url


def server_lines(pool: PoolWatcher) -> list[tuple[ServerState, str, str]]:
    """(state, "N · what it is doing", URL) for each server of a pool, numbered from 1 in
    SELFHOSTED_API_URL's order."""
    return [
        (m.status.state, f"{n} · {words}", url)
        for n, m in enumerate(pool.members, 1)
        for words, url in [_member_words(pool, m)]
    ]


def _short(url: str) -> str:
    """The address as a line shows it: without the usual ``http://``."""
    return url.removeprefix("http://")


def pool_status_text(pool: PoolWatcher) -> tuple[str, str]:
    """(main line, detail line) for the pool as a whole."""
    status = pool.status
    n = len(pool.members)
    rate = pool.settings.selfhosted_cost_per_hour
    if status.state is ServerState.CHECKING:
        line = f"Checking your {n} servers…"
    elif status.state is ServerState.OFFLINE:
        line = f"Offline: {status.reason}"
    else:
        line = status.summary()
    parts = []
    if rate:
        parts.append(f"{usd(rate)}/h each · {usd(pool.spent_usd())} so far")
    if status.state is ServerState.OFFLINE:
        parts.append("each is checked again on its own — or press Refresh")
    if pool.paused:
        parts.append("auto-check paused so they can idle — press Refresh")
    if pool.settings.cost_error:
        parts.append(pool.settings.cost_error)
    if pool.error:
        parts.append(pool.error)
    return line, " · ".join(parts)


def servers_html(pool: PoolWatcher) -> str:
    """A dot and a line per server, for under the status line."""
    from .status import DOT_COLOURS

    rows = []
    for state, words, url in server_lines(pool):
        number, _, doing = words.partition(" · ")
        rows.append(
            f'<div class="pixery-server" data-state="{state.value}" '
            'style="display:flex;gap:8px;align-items:baseline;line-height:1.35;">'
            f'<span class="pixery-dot" aria-hidden="true" style="flex:0 0 auto;display:inline-block;'
            f"width:8px;height:8px;border-radius:50%;background:{DOT_COLOURS[state]};"
            'position:relative;top:0px"></span>'
            '<span class="pixery-server-line" style="min-width:0;'
            f'color:var(--jp-ui-font-color1,#212121)">{html.escape(number)} · '
            '<span class="pixery-server-url" style="color:var(--jp-ui-font-color2,#616161)">'
            f"{html.escape(_short(url))}</span> · {html.escape(doing)}</span></div>"
        )
    return (
        '<div class="pixery-servers" style="margin:4px 0 0 18px;display:flex;flex-direction:column;'
        f'gap:2px;font-size:var(--jp-ui-font-size0,11px)">{"".join(rows)}</div>'
    )
