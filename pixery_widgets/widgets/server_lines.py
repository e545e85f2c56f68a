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
    """(main line, detail line) for the pool as a whole: its status's ``headline()``,
    then the rate and what the servers have cost, and what only the watcher knows."""
    status = pool.status
    rate = pool.settings.selfhosted_cost_per_hour
    line, _ = status.headline()
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
    """A dot and a line per server, for under the status line (classes of static/widgets.css;
    the dot's colour follows data-state)."""
    rows = []
    for state, words, url in server_lines(pool):
        number, _, doing = words.partition(" · ")
        rows.append(
            f'<div class="pixery-server" data-state="{state.value}">'
            f'<span class="pixery-dot" data-state="{state.value}" aria-hidden="true"></span>'
            f'<span class="pixery-server-line">{html.escape(number)} · '
            f'<span class="pixery-server-url">{html.escape(_short(url))}</span>'
            f" · {html.escape(doing)}</span></div>"
        )
    return f'<div class="pixery-servers">{"".join(rows)}</div>'
