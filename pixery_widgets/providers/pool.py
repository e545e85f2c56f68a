"""One image on a pool of self-hosted servers: which server draws it.

The rule, best first, among the servers that are up and have the model:
1. an idle server that has the model loaded (it starts at once);
2. an idle server that has it downloaded (it loads it first, about 10 s);
3. else the server with the shortest queue: the fewest of this kernel's own
   generations in flight there (``generations_in_flight``), the one with the
   model loaded first among equals.

"Up" is what the last check said (``servers.sighting``), asked again when it is
older than ``STALE_AFTER`` (a server drawing our image is not asked: it blocks,
so it is busy, not offline). A server that refuses the connection or drops it
before an image arrived is marked offline and the next one is tried; nothing
was drawn, so nothing is lost or paid twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import NamedTuple

from ..core.config import Settings, mask_url
from ..core.errors import (
    ConnectionFailedError,
    ModelUnavailableError,
    PixeryError,
    UnknownLoraError,
)
from ..core.types import Generation, GenerationRequest, SelfHostedStatus, ServerState
from ._base import OnImage
from .in_flight import generations_in_flight
from .selfhosted import SelfHostedClient, client_for
from .servers import acheck_server, note_down, note_loaded, sighting

__all__ = [
    "STALE_AFTER",
    "ServerView",
    "agenerate_on_pool",
    "aloras",
    "fresh_statuses",
    "has_lora",
    "has_model",
    "rank_servers",
    "view_of",
]

#: Seconds a server's last status is trusted: (while it was up, while it was not).
STALE_AFTER = (30.0, 5.0)


class ServerView(NamedTuple):
    """What the picker needs to know of one server for one request."""

    url: str
    up: bool
    #: This request's model is the one loaded there.
    loaded: bool
    #: The model is on its menu and downloaded: False when known not to be, None unknown.
    has_model: bool | None
    #: The request's LoRA is on the server: False when known not to be.
    has_lora: bool | None
    #: This kernel's generations in flight there.
    queue: int


def rank_servers(views: Sequence[ServerView]) -> list[str]:
    """The servers that can take the request, best first (see the module docstring)."""
    usable = [
        (n, v)
        for n, v in enumerate(views)
        if v.up and v.has_model is not False and v.has_lora is not False
    ]

    def key(item: tuple[int, ServerView]) -> tuple[int, int, bool, int]:
        n, v = item
        tier = (0 if v.loaded else 1) if v.queue == 0 else 2
        return tier, v.queue, not v.loaded, n

    return [v.url for _, v in sorted(usable, key=key)]


def has_model(status: SelfHostedStatus, model: str) -> bool | None:
    """Whether the server lists ``model`` with its checkpoint downloaded; None: unknown."""
    if status.health is None and status.known_models is None:
        return None
    if model not in status.local_models:
        return False
    info = status.models.get(model) if status.models else None
    return info.downloaded if info is not None else None


def has_lora(status: SelfHostedStatus, lora: str | None) -> bool | None:
    """Whether the server lists the LoRA (True without one); None: unknown."""
    if not lora:
        return True
    if status.state is not ServerState.HEALTHY or status.health is None:
        return None
    return lora in status.loras


def view_of(url: str, status: SelfHostedStatus | None, request: GenerationRequest) -> ServerView:
    """The picker's view of ``url`` for ``request``, from its last status."""
    seen = sighting(url)
    queue = generations_in_flight(url)
    if status is None:  # never checked; only possible while our own work runs there
        return ServerView(url, queue > 0, False, None, None, queue)
    loaded = (seen.loaded if seen else None) == request.model
    return ServerView(
        url,
        status.reachable,
        loaded,
        has_model(status, request.model),
        has_lora(status, request.lora),
        queue,
    )


async def fresh_statuses(
    settings: Settings, *, force: bool = False, recheck_down: bool = False
) -> dict[str, SelfHostedStatus | None]:
    """Each server's status, checking (all at once) those whose last one is stale, or
    every one (``force``), or those last seen down (``recheck_down``: a batch starts).

    A server with our own generation in flight is not asked (it would block).
    """
    now = time.monotonic()
    stale = []
    for url in settings.selfhosted_urls:
        seen = sighting(url)
        up = seen is not None and seen.status.reachable
        old = seen is None or now - seen.at > STALE_AFTER[0 if up else 1]
        if (force or old or (recheck_down and not up)) and not generations_in_flight(url):
            stale.append(url)
    await asyncio.gather(*(acheck_server(settings.for_server(url)) for url in stale))
    out: dict[str, SelfHostedStatus | None] = {}
    for url in settings.selfhosted_urls:
        seen = sighting(url)
        out[url] = seen.status if seen is not None else None
    return out


def _nobody(
    request: GenerationRequest, statuses: dict[str, SelfHostedStatus | None]
) -> PixeryError:
    """The error when no server can draw ``request``, saying what each one said."""
    n = len(statuses)
    up = [u for u, s in statuses.items() if s is not None and s.reachable]
    if not up:
        why = "; ".join(
            f"{k} ({mask_url(u)}): {s.reason if s is not None and s.reason else 'no answer'}"
            for k, (u, s) in enumerate(statuses.items(), 1)
        )
        return ConnectionFailedError(
            f"None of your {n} self-hosted servers can draw now ({why}).",
            reason="no server up",
        )
    if request.lora:
        return UnknownLoraError(
            f"No server that is up has both {request.model} and the LoRA {request.lora!r}."
        )
    return ModelUnavailableError(
        f"{request.model} is not downloaded on any of your {len(up)} servers that are up; "
        "download it on one of them, or choose another model.",
        provider="selfhosted",
        reason="not downloaded",
    )


async def agenerate_on_pool(
    request: GenerationRequest, settings: Settings, *, on_image: OnImage | None = None
) -> Generation:
    """Draw ``request`` on the best server of the pool, falling back to the next one when
    a server turns out to be gone (no image had arrived from it)."""
    statuses = await fresh_statuses(settings)
    if not any(s is not None and s.reachable for s in statuses.values()):
        statuses = await fresh_statuses(settings, force=True)  # asked to draw: ask again
    failures: list[PixeryError] = []
    tried: set[str] = set()
    while True:
        views = [view_of(url, statuses[url], request) for url in settings.selfhosted_urls]
        ranked = [url for url in rank_servers(views) if url not in tried]
        if not ranked:
            if failures and isinstance(failures[-1], ModelUnavailableError):
                raise failures[-1]  # the server's own words about its checkpoint
            raise _nobody(request, statuses)
        url = ranked[0]
        tried.add(url)
        client = SelfHostedClient(url, cost_per_hour=settings.selfhosted_cost_per_hour)
        try:  # client.generate counts itself in flight before it first waits: no race
            generation = await client.generate(request, on_image=on_image)
        except ConnectionFailedError as exc:
            note_down(url, exc.reason or "unreachable")
            seen = sighting(url)
            statuses[url] = seen.status if seen is not None else None
            failures.append(exc)
            continue
        except ModelUnavailableError as exc:  # not downloaded there after all: try another
            failures.append(exc)
            continue
        note_loaded(url, request.model)
        return generation


async def aloras(settings: Settings) -> tuple[str, ...]:
    """The LoRAs a request may name: the one server's, or every server's that is up."""
    if len(settings.selfhosted_urls) <= 1:
        return await client_for(settings).loras()
    statuses = await fresh_statuses(settings)
    up = [s for s in statuses.values() if s is not None and s.reachable]
    if not up:
        raise _nobody(GenerationRequest("", "", "selfhosted"), statuses)
    out: list[str] = []
    for status in up:
        out += [name for name in status.loras if name not in out]
    return tuple(out)
