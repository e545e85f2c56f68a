"""Is the self-hosted server usable now? One health check, then details concurrently.

``acheck_selfhosted`` never raises: every outcome is a ``SelfHostedStatus``
whose ``reason`` says in words what happened. The models a server listed are
remembered per URL for the session, so the menu can show them while the server
is offline or busy.

The state is known once ``/health`` has answered; ``/models`` and ``/loras``
only add details (downloaded checkpoints, LoRAs). So ``on_health`` hears the
healthy status at once (``acheck_with_early_health``, which the panel's watcher
uses), and the details get what is left of the check's
``CHECK_BUDGET`` (at least ``MIN_DETAILS_WAIT``): a detail route that hangs
costs the status nothing and the check at most 2.5 s, and its details come
with the next check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..core.config import Settings, load_settings
from ..core.errors import ConfigurationError, PixeryError, ServerError, ServerTimeoutError
from ..core.types import SelfHostedStatus, ServerState
from .selfhosted import HEALTH_TIMEOUT, SelfHostedClient, generations_in_flight

__all__ = [
    "CHECK_BUDGET",
    "DRAWING",
    "acheck_selfhosted",
    "acheck_with_early_health",
    "busy_status",
    "checking_status",
    "forget_known_models",
    "known_models",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds a whole check (``/health``, then the details) may take.
CHECK_BUDGET = 2.5
#: The details' wait after a ``/health`` that used most of the budget.
MIN_DETAILS_WAIT = 0.5
#: Why the server is busy while this process has an image drawn there.
DRAWING = "drawing an image for this notebook"

_known_models: dict[str, tuple[str, ...]] = {}


def known_models(url: str | None) -> tuple[str, ...] | None:
    """The model list the server at ``url`` gave last in this session, if any."""
    return _known_models.get(url) if url else None


def forget_known_models() -> None:
    """Clear the session's memory of server menus (tests, or a new session)."""
    _known_models.clear()


def checking_status(settings: Settings) -> SelfHostedStatus:
    """What is known before asking: not configured, or a check to come."""
    if settings.url_error:
        return SelfHostedStatus(ServerState.NOT_CONFIGURED, reason=settings.url_error)
    if not settings.selfhosted_url:
        return SelfHostedStatus(ServerState.NOT_CONFIGURED)
    url = settings.selfhosted_url
    return SelfHostedStatus(ServerState.CHECKING, url=url, known_models=known_models(url))


def busy_status(
    url: str | None, reason: str | None = None, *, previous: SelfHostedStatus | None = None
) -> SelfHostedStatus:
    """Busy (``reason``, by default ``DRAWING``), keeping what the server said last
    (GPU, models, LoRAs) when ``previous`` is an answer from the same server."""
    reason = reason or DRAWING
    if previous is not None and previous.url == url and previous.reachable:
        return dataclasses.replace(previous, state=ServerState.BUSY, reason=reason)
    return SelfHostedStatus(
        ServerState.BUSY,
        url=url,
        reason=reason,
        known_models=known_models(url),
        checked_at=time.time(),
    )


async def acheck_selfhosted(
    settings: Settings | None = None, *, timeout: float = HEALTH_TIMEOUT
) -> SelfHostedStatus:
    """Check the server: ``/health`` with a short timeout, then ``/models`` and ``/loras``.

    With several servers in SELFHOSTED_API_URL: each is checked so, all at once,
    and the answer combines them (``servers.combine_statuses``).
    """
    return await acheck_with_early_health(settings, timeout=timeout)


async def acheck_with_early_health(
    settings: Settings | None = None,
    *,
    timeout: float = HEALTH_TIMEOUT,
    on_health: Callable[[SelfHostedStatus], Any] | None = None,
) -> SelfHostedStatus:
    """``acheck_selfhosted``, calling ``on_health`` with the healthy status (no details yet)
    as soon as ``/health`` has answered; what it returns adds the details that came in time.
    """
    settings = settings if settings is not None else load_settings()
    if len(settings.selfhosted_urls) > 1 and not settings.url_error:
        from .servers import acheck_servers, combine_statuses

        return combine_statuses(await acheck_servers(settings, timeout=timeout))
    first = checking_status(settings)
    if first.state is ServerState.NOT_CONFIGURED:
        return first
    url = first.url
    assert url is not None
    started = time.monotonic()
    try:
        client = SelfHostedClient(url)
        health = await client.health(timeout=timeout)
    except ServerTimeoutError as exc:
        if generations_in_flight(url):
            return busy_status(url)
        return _offline(url, exc)
    except PixeryError as exc:
        return _offline(url, exc)
    except Exception as exc:  # a bug of ours, not the server: shown, never raised
        log.warning("The status check of %s failed.", first.display_url, exc_info=True)
        return _offline(url, PixeryError(str(exc), reason=f"check failed ({type(exc).__name__})"))

    _known_models[url] = health.available_models
    healthy = SelfHostedStatus(
        ServerState.HEALTHY,
        url=url,
        health=health,
        known_models=health.available_models,
        checked_at=time.time(),
    )
    if on_health is not None:
        try:
            on_health(healthy)
        except Exception:  # the listener's bug must not turn a healthy server into a raise
            log.warning("The early status listener failed.", exc_info=True)
    wait = max(MIN_DETAILS_WAIT, CHECK_BUDGET - (time.monotonic() - started))
    models, loras = await asyncio.gather(
        _detail(client.models(timeout=wait), first.display_url),
        _detail(client.loras(timeout=wait), first.display_url),
    )
    return dataclasses.replace(healthy, models=models, loras=loras or (), checked_at=time.time())


async def _detail(coro: Awaitable[T], shown_url: str | None) -> T | None:
    """A detail route's answer, or None when it failed or was late (the status stands)."""
    try:
        return await coro
    except PixeryError:
        return None
    except Exception:  # a bug of ours: logged, and the server still counts as healthy
        log.warning("Reading the details of %s failed.", shown_url, exc_info=True)
        return None


def _offline(url: str, exc: PixeryError) -> SelfHostedStatus:
    return SelfHostedStatus(
        ServerState.OFFLINE,
        url=url,
        reason=_short_reason(exc),
        known_models=known_models(url),
        checked_at=time.time(),
    )


def _short_reason(exc: PixeryError) -> str:
    """A few words for the status line: the error's own short reason, else its sentence."""
    if exc.reason:
        return exc.reason
    if isinstance(exc, ConfigurationError):  # an address made by hand that cannot be used
        return exc.message
    if isinstance(exc, ServerError):
        return f"error answer (HTTP {exc.status_code})"
    return f"bad answer: {exc.message}"
