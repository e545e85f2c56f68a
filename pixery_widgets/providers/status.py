"""Is the self-hosted server usable now? One health check, then details concurrently.

``acheck_selfhosted`` never raises for a server problem: every outcome is a
``SelfHostedStatus`` whose ``reason`` says in words what happened. The models
a server listed are remembered per URL for the session, so the menu can show
them while the server is offline or busy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from ..core.config import Settings, load_settings
from ..core.errors import PixeryError, ServerError, ServerTimeoutError
from ..core.types import SelfHostedStatus, ServerState
from .selfhosted import HEALTH_TIMEOUT, SelfHostedClient, generations_in_flight

__all__ = [
    "DRAWING",
    "acheck_selfhosted",
    "busy_status",
    "checking_status",
    "forget_known_models",
    "known_models",
]

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
    settings = settings if settings is not None else load_settings()
    if len(settings.selfhosted_urls) > 1 and not settings.url_error:
        from .servers import acheck_servers, combine_statuses

        return combine_statuses(await acheck_servers(settings, timeout=timeout))
    first = checking_status(settings)
    if first.state is ServerState.NOT_CONFIGURED:
        return first
    url = first.url
    assert url is not None
    client = SelfHostedClient(url)
    try:
        health = await client.health(timeout=timeout)
    except ServerTimeoutError as exc:
        if generations_in_flight(url):
            return busy_status(url)
        return _offline(url, exc)
    except PixeryError as exc:
        return _offline(url, exc)

    _known_models[url] = health.available_models
    models_result, loras_result = await asyncio.gather(
        client.models(), client.loras(), return_exceptions=True
    )
    for result in (models_result, loras_result):
        if isinstance(result, BaseException) and not isinstance(result, PixeryError):
            raise result
    return SelfHostedStatus(
        ServerState.HEALTHY,
        url=url,
        health=health,
        models=None if isinstance(models_result, BaseException) else models_result,
        loras=() if isinstance(loras_result, BaseException) else loras_result,
        known_models=health.available_models,
        checked_at=time.time(),
    )


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
    if isinstance(exc, ServerError):
        return f"error answer (HTTP {exc.status_code})"
    return f"bad answer: {exc.message}"
