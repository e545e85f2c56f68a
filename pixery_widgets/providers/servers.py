"""Several self-hosted servers: each checked on its own, all at once, and what this
kernel has seen of each.

``SELFHOSTED_API_URL`` may list several servers (rented GPUs). Each is checked
exactly as a lone server is (``acheck_selfhosted``: one ``/health`` under the
2 s rule, then its details), concurrently, so one hanging box costs the check
2 s, not 2 s per box. ``combine_statuses`` makes one status of them: healthy
when any server is, with the union of their menus.

Every check is remembered per URL (a ``Sighting``): the last status, which model
the server holds (updated after each image drawn there), and how long it has
been up since this kernel first saw it, which is what its hours have cost.
A pool's picker (``pool.py``) and a batch read these, so a check the panel just
made is not made again.

``announce_servers`` tells running batches that the list was read again (a
Refresh after editing ``.env``), so a server added meanwhile joins them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.config import Settings, load_settings
from ..core.observers import Observers
from ..core.types import LocalModelInfo, SelfHostedStatus, ServerState
from .selfhosted import HEALTH_TIMEOUT
from .status import acheck_selfhosted, checking_status, known_models

__all__ = [
    "Sighting",
    "acheck_server",
    "acheck_servers",
    "announce_servers",
    "combine_statuses",
    "forget_servers",
    "known_pool_models",
    "note_down",
    "note_loaded",
    "record",
    "sighting",
    "spent_usd",
    "watch_server_list",
]


@dataclass
class Sighting:
    """What this kernel knows of one server: its last status and its time up."""

    url: str
    status: SelfHostedStatus
    #: When ``status`` arrived (``time.monotonic``).
    at: float
    #: The model the server holds now, as far as this kernel knows.
    loaded: str | None = None
    #: Wall-clock time (``time.time``) it was first seen up; None: never yet.
    first_up: float | None = None
    #: Seconds up in spans that have ended (seen up, then seen down).
    up_before: float = 0.0
    #: Start (monotonic) of the span it is up in now, and when it was last seen up.
    up_since: float | None = None
    last_up: float | None = None

    def up_seconds(self, now: float | None = None) -> float:
        """Seconds it has been up (and billed) since first seen: ended spans, plus the
        current one to ``now`` while it is up."""
        now = time.monotonic() if now is None else now
        current = now - self.up_since if self.up_since is not None else 0.0
        return self.up_before + max(0.0, current)


_sightings: dict[str, Sighting] = {}
_list_observers: Observers[[tuple[str, ...]]] = Observers()


def sighting(url: str) -> Sighting | None:
    """What this kernel has seen of the server at ``url``, if anything."""
    return _sightings.get(url)


def forget_servers() -> None:
    """Forget every sighting (tests, or a new session)."""
    _sightings.clear()


def record(status: SelfHostedStatus, *, now: float | None = None) -> None:
    """Remember a server's status; its up-time runs while it is reachable."""
    url = status.url
    if url is None or status.state in (ServerState.NOT_CONFIGURED, ServerState.CHECKING):
        return
    now = time.monotonic() if now is None else now
    seen = _sightings.get(url)
    if seen is None:
        seen = _sightings[url] = Sighting(url, status, now)
    if status.health is not None:
        seen.loaded = status.health.current_model
    if status.state is ServerState.BUSY and seen.status.reachable:
        # busy keeps what the server said last (GPU, menu, LoRAs): it is drawing ours
        status = dataclasses.replace(seen.status, state=ServerState.BUSY, reason=status.reason)
    seen.status, seen.at = status, now
    if status.reachable:
        if seen.up_since is None:
            seen.up_since = now
        if seen.first_up is None:
            seen.first_up = time.time()
        seen.last_up = now
    elif seen.up_since is not None:  # down: the span ends when it was last seen up
        seen.up_before += (seen.last_up or seen.up_since) - seen.up_since
        seen.up_since = None


def known_pool_models(settings: Settings) -> tuple[str, ...] | None:
    """The models the configured servers listed last in this session, united; None if
    none has answered yet (one server: exactly ``known_models`` of its URL)."""
    lists = [m for url in settings.selfhosted_urls if (m := known_models(url)) is not None]
    return _union(lists) if lists else None


def note_loaded(url: str, model: str) -> None:
    """An image of ``model`` was drawn on ``url``: the server holds that model now."""
    seen = _sightings.get(url)
    if seen is not None:
        seen.loaded = model


def note_down(url: str, reason: str) -> None:
    """A request to ``url`` found nobody there: offline until a check says otherwise."""
    seen = _sightings.get(url)
    record(
        SelfHostedStatus(
            ServerState.OFFLINE,
            url=url,
            reason=reason,
            known_models=seen.status.local_models if seen else None,
            checked_at=time.time(),
        )
    )


def spent_usd(url: str, cost_per_hour: float | None, *, now: float | None = None) -> float:
    """What the server's hours have cost since this kernel first saw it up."""
    seen = _sightings.get(url)
    if seen is None or not cost_per_hour:
        return 0.0
    return cost_per_hour * seen.up_seconds(now) / 3600


# -- checking -------------------------------------------------------------------------------


async def acheck_server(settings: Settings, *, timeout: float = HEALTH_TIMEOUT) -> SelfHostedStatus:
    """Check the one server of ``settings`` (``acheck_selfhosted``) and remember the answer."""
    status = await acheck_selfhosted(settings, timeout=timeout)
    record(status)
    return status


async def acheck_servers(
    settings: Settings | None = None, *, timeout: float = HEALTH_TIMEOUT
) -> tuple[SelfHostedStatus, ...]:
    """One status per server in SELFHOSTED_API_URL, every server checked at once.

    Each check is a lone server's check (2 s for ``/health``, then its models and
    LoRAs), so the whole takes as long as the slowest server, not their sum.
    With no server configured (or a malformed list): one ``not_configured``
    status saying why. Settings are read afresh unless given; a list read afresh
    is announced to running batches, so a server added to it joins them.
    """
    if settings is None:
        settings = load_settings()
        announce_servers(settings)
    if not settings.selfhosted_urls or settings.url_error:
        return (checking_status(settings),)
    checks = [
        acheck_server(settings.for_server(url), timeout=timeout) for url in settings.selfhosted_urls
    ]
    return tuple(await asyncio.gather(*checks))


# -- combining ------------------------------------------------------------------------------


def _combined_state(statuses: Sequence[SelfHostedStatus]) -> ServerState:
    states = {s.state for s in statuses}
    for state in (ServerState.HEALTHY, ServerState.BUSY, ServerState.CHECKING):
        if state in states:
            return state
    return ServerState.OFFLINE


def _count_words(statuses: Sequence[SelfHostedStatus]) -> str:
    """ "2 of 3 servers up", with what the others are doing."""
    n = len(statuses)
    up = sum(s.reachable for s in statuses)
    busy = sum(s.state is ServerState.BUSY for s in statuses)
    checking = sum(s.state is ServerState.CHECKING for s in statuses)
    if checking == n:
        return f"checking {n} servers…"
    if not up and not checking:
        return f"none of {n} servers answers"
    words = f"{up} of {n} servers up"
    if busy:
        words += f", {busy} drawing" if busy < up else ", all drawing"
    if checking:
        words += f", {checking} being checked"
    return words


def _merged_models(statuses: Sequence[SelfHostedStatus]) -> dict[str, LocalModelInfo] | None:
    """Each model as the pool has it: downloaded (or loaded) on any server that is up."""
    up = [s for s in statuses if s.reachable and s.models]
    if not up:
        return None
    merged: dict[str, LocalModelInfo] = {}
    for status in up:
        assert status.models is not None
        for name, info in status.models.items():
            have = merged.get(name)
            if have is None:
                merged[name] = info
            else:
                merged[name] = dataclasses.replace(
                    have,
                    downloaded=have.downloaded or info.downloaded,
                    loaded=have.loaded or info.loaded,
                )
    return merged


def _union(groups: Sequence[Sequence[str]]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        out += [name for name in group if name not in out]
    return tuple(out)


def combine_statuses(statuses: Sequence[SelfHostedStatus]) -> SelfHostedStatus:
    """One status for several servers: healthy when any is (busy when the only ones up
    are drawing), with their menus and LoRAs united; each stays in ``servers``.

    A single status is returned as it is.
    """
    statuses = tuple(statuses)
    if len(statuses) == 1:
        return statuses[0]
    up = [s for s in statuses if s.reachable]
    checked = [s.checked_at for s in statuses if s.checked_at is not None]
    return SelfHostedStatus(
        _combined_state(statuses),
        reason=_count_words(statuses),
        models=_merged_models(statuses),
        loras=_union([s.loras for s in up]),
        known_models=_union(
            [s.local_models for s in up + [s for s in statuses if not s.reachable]]
        ),
        checked_at=max(checked) if checked else None,
        servers=statuses,
    )


# -- the list of servers, read again ---------------------------------------------------------


def watch_server_list(listener: Callable[[tuple[str, ...]], None]) -> Callable[[], None]:
    """Call ``listener(urls)`` each time SELFHOSTED_API_URL has been read again; returns
    the function that stops it."""
    return _list_observers.add(listener)


def announce_servers(settings: Settings) -> None:
    """Tell whoever listens (running batches) the servers ``settings`` lists now."""
    urls = () if settings.url_error else settings.selfhosted_urls
    _list_observers.notify(urls)
