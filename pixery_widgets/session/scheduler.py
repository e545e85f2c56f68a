"""A batch over several self-hosted servers: every server busy, few checkpoint switches.

Each server that is up gets a worker (``concurrency`` of them for
``{"selfhosted": n}``). When a worker is free it follows one rule:

1. take the next job for the model its server has loaded;
2. only when none is left, switch once, to the longest queue: the model whose
   waiting jobs would take longest to drain, counting the servers already on it
   (a model no server is on comes first; ties go to the earlier job). It joins
   a queue other servers already work on only when that pays: when the jobs
   waiting there outnumber those servers times the time a switch costs in
   images (measured in this batch; one image until measured).

Why switches stay few: a server never leaves a model while jobs for it wait, so
it switches only when its model's queue has run dry, and then to the work that
would otherwise finish last. Servers that start with different models draw a
batch of those models without a single switch; a model no server holds costs
one switch, made by the first server to run out of its own work. A switch
costs about 10 s on a real GPU, as much as an image.

A server that dies mid-batch (connection refused, dropped, or timed out): the job
it was drawing goes back to the front of its queue (no image had arrived, so
nothing is lost or paid twice) and another server takes it; the dead one is
re-checked in the background (``RECHECK_DELAYS``) and rejoins when it is healthy
again. A job given back ``MAX_GIVE_BACKS`` times fails. When no server is left,
the rest fail with the reason, and ``retry_failed()`` resumes them. A server
added to SELFHOSTED_API_URL during the batch (Refresh after editing ``.env``, or
``px.acheck_servers()``) joins it. Results keep input order, as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.config import Settings, mask_url
from ..core.errors import (
    ConnectionFailedError,
    ModelUnavailableError,
    PixeryError,
    ServerTimeoutError,
)
from ..core.types import Generation, SelfHostedStatus
from ..providers.pool import fresh_statuses, has_lora, has_model
from ..providers.servers import acheck_server, note_down, note_loaded, watch_server_list
from .jobs import JobFailure, unexpected_error

if TYPE_CHECKING:
    from .batch import Batch

__all__ = ["MAX_GIVE_BACKS", "RECHECK_DELAYS", "PoolScheduler", "pool_workers", "tally"]

logger = logging.getLogger(__name__)

#: Seconds between re-checks of a server that died, the last one repeating.
RECHECK_DELAYS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)
#: A job whose server dies under it this many times fails instead of going back again.
MAX_GIVE_BACKS = 3
#: A switch's cost in images, until the batch has measured both.
SWITCH_IN_IMAGES = 1.0


@dataclass(eq=False)
class _Server:
    url: str
    settings: Settings
    status: SelfHostedStatus | None = None
    loaded: str | None = None
    live: bool = False
    reason: str | None = None
    missing: set[str] = field(default_factory=set)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    watcher: asyncio.Task[None] | None = None


def pool_workers(
    batch: Batch, queues: dict[tuple[str, ...], deque[int]]
) -> list[asyncio.Task[Any]]:
    """The task that runs a pool's self-hosted jobs, taken out of ``queues``; none for one server."""
    settings = batch.settings
    if len(settings.selfhosted_urls) < 2 or settings.url_error:
        return []
    queue = queues.pop(("selfhosted", settings.selfhosted_url or ""), None)
    if not queue:
        return []
    scheduler = PoolScheduler(
        batch, sorted(queue), settings, per_server=batch.concurrency_for("selfhosted")
    )
    return [asyncio.create_task(scheduler.run(), name=f"pixery-batch-{batch.id}-pool")]


def tally(batch: Batch) -> dict[str, int]:
    """Images each server drew in ``batch`` (its masked URL → count), servers in order."""
    urls = batch.settings.selfhosted_urls
    counts: Counter[str] = Counter()
    for i, result in enumerate(batch.results):
        arrived = result if isinstance(result, Generation) else getattr(result, "generation", None)
        if arrived is not None and arrived.provider == "selfhosted":
            url = batch.server_of.get(i, urls[0] if len(urls) == 1 else None)
            if url is not None:
                counts[url] += 1
    order = list(urls) + [u for u in counts if u not in urls]
    return {mask_url(url): counts[url] for url in order}


class PoolScheduler:
    """Runs the self-hosted jobs ``indices`` of ``batch`` over the servers of ``settings``."""

    def __init__(
        self,
        batch: Batch,
        indices: Sequence[int],
        settings: Settings,
        *,
        per_server: int = 1,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.batch = batch
        self.settings = settings
        self.per_server = max(1, per_server)
        self._sleep = sleep
        self.queues: dict[str, deque[int]] = {}
        for i in sorted(indices):
            self.queues.setdefault(batch.jobs[i].model, deque()).append(i)
        self.pending = set(indices)
        self.servers: dict[str, _Server] = {}
        self.switches = 0
        self._given: Counter[int] = Counter()
        self._running = 0
        self._tick = asyncio.Event()
        self._image_s: list[float] = []
        self._switch_s: list[float] = []

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until every job has a result (or the batch is cancelled)."""
        unwatch = watch_server_list(self._on_list)
        try:
            statuses = await fresh_statuses(self.settings, recheck_down=True)
            for url, status in statuses.items():
                self._add(url, status)
            while self.pending and not self.batch.cancel_requested:
                self._settle_stranded()
                if not self.pending:
                    break
                await self._changed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not pass for a cancel: say it per job
            logger.exception("the pool scheduler failed")
            self._fail_queued(unexpected_error(exc, self.settings), everything=True)
        finally:
            unwatch()
            await self._stop_all()

    def _add(self, url: str, status: SelfHostedStatus | None) -> None:
        server = self.servers[url] = _Server(url, self.settings.for_server(url))
        if status is None or status.reachable:  # None: never checked, our own work runs there
            self._up(server, status)
        else:
            self._down(server, status.reason or "offline", note=False)

    def _on_list(self, urls: tuple[str, ...]) -> None:
        """SELFHOSTED_API_URL was read again: a server new to this batch joins it."""
        for url in urls:
            if url not in self.servers:  # checked first; it takes jobs once it answers
                server = self.servers[url] = _Server(url, self.settings.for_server(url))
                server.reason = "being checked"
                server.watcher = asyncio.get_running_loop().create_task(self._watch(server, 0.0))

    # -- servers coming and going -----------------------------------------------------------

    def _up(self, server: _Server, status: SelfHostedStatus | None) -> None:
        server.status, server.live, server.reason = status, True, None
        if status is not None and status.health is not None:
            server.loaded = status.health.current_model
        server.missing.clear()
        loop = asyncio.get_running_loop()
        server.workers = [
            loop.create_task(self._work(server), name=f"pixery-pool-{server.url}")
            for _ in range(self.per_server)
        ]
        self._wake()

    def _down(self, server: _Server, reason: str, *, note: bool = True) -> None:
        if not server.live and server.watcher is not None:
            return
        server.live, server.reason = False, reason
        if note:
            note_down(server.url, reason)
        server.watcher = asyncio.get_running_loop().create_task(self._watch(server))
        self._wake()

    async def _watch(self, server: _Server, first: float | None = None) -> None:
        """Re-check a server that is down until it answers; then it takes jobs again."""
        delays = ([first] if first is not None else []) + list(RECHECK_DELAYS)
        for n in range(10**9):
            await self._sleep(delays[min(n, len(delays) - 1)])
            status = await acheck_server(server.settings)
            if status.reachable:
                server.watcher = None
                self._up(server, status)
                return
            server.reason = status.reason or "offline"

    async def _stop_all(self) -> None:
        tasks = [t for s in self.servers.values() for t in [*s.workers, s.watcher] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- a worker ---------------------------------------------------------------------------

    async def _work(self, server: _Server) -> None:
        try:
            await self._serve(server)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: every job still waiting says so, none hangs
            logger.exception("a pool worker failed")
            self._fail_queued(unexpected_error(exc, self.settings))
            self._wake()

    async def _serve(self, server: _Server) -> None:
        while server.live and not self.batch.cancel_requested:
            taken = self._take(server)
            if taken is None:
                await self._changed()
                continue
            i, kind = taken
            self._running += 1
            started = time.monotonic()
            try:
                generation = await self.batch.run_job(
                    i, server.settings, give_back=lambda exc, i=i: self._give_back(server, i, exc)
                )
            finally:
                self._running -= 1
            if generation is not None:
                self._learn(kind, time.monotonic() - started)
                self.batch.server_of[i] = server.url
                note_loaded(server.url, generation.model)
            if self.batch.results[i] is not None:
                self.pending.discard(i)
            self._wake()

    def _can(self, server: _Server, model: str) -> bool:
        if model in server.missing:
            return False
        status = server.status
        if status is None:
            return True
        lora = self.batch.params.get("lora")
        return has_model(status, model) is not False and has_lora(status, lora) is not False

    def _take(self, server: _Server) -> tuple[int, str] | None:
        """The job this server does next, and how: "same" model, "switch" or "load"."""
        loaded = server.loaded
        if loaded is not None and self.queues.get(loaded) and self._can(server, loaded):
            return self.queues[loaded].popleft(), "same"
        options = [m for m, q in self.queues.items() if q and self._can(server, m)]
        if not options:
            return None

        def others_on(model: str) -> int:
            return sum(
                s.live and s is not server and s.loaded == model and self._can(s, model)
                for s in self.servers.values()
            )

        def drain(model: str) -> tuple[bool, float]:
            n = others_on(model)
            return n == 0, len(self.queues[model]) / max(n, 1)

        best = max(options, key=drain)  # the first of equals: the earlier job
        serving = others_on(best)
        if (
            loaded is not None
            and serving
            and len(self.queues[best]) <= serving * self._switch_cost()
        ):
            return None  # cheaper to let those servers finish it
        server.loaded = best
        if loaded is None:
            return self.queues[best].popleft(), "load"
        self.switches += 1
        return self.queues[best].popleft(), "switch"

    def _give_back(self, server: _Server, i: int, exc: PixeryError) -> bool:
        """Whether job ``i``, failed on ``server`` with ``exc``, goes back for another server."""
        model = self.batch.jobs[i].model
        if isinstance(exc, ModelUnavailableError):  # not downloaded there after all
            server.missing.add(model)
            server.loaded = None  # what it holds now is not known
            others = [s for s in self.servers.values() if s is not server and self._can(s, model)]
            if not others:
                return False
        elif isinstance(exc, (ConnectionFailedError, ServerTimeoutError)):
            self._down(server, exc.reason or "unreachable")
            self._given[i] += 1
            if self._given[i] >= MAX_GIVE_BACKS:
                return False
        else:
            return False
        self.queues.setdefault(model, deque()).appendleft(i)
        return True

    def _learn(self, kind: str, seconds: float) -> None:
        if kind == "same":
            self._image_s.append(seconds)
        elif kind == "switch" and self._image_s:
            self._switch_s.append(max(0.0, seconds - statistics.mean(self._image_s)))

    def _switch_cost(self) -> float:
        """What a switch costs, in images, as measured in this batch."""
        if not self._image_s or not self._switch_s:
            return SWITCH_IN_IMAGES
        image = statistics.mean(self._image_s)
        return statistics.mean(self._switch_s) / image if image > 0 else SWITCH_IN_IMAGES

    # -- what cannot be done ----------------------------------------------------------------

    def _settle_stranded(self) -> None:
        """Fail queued jobs no server that is up can take, once nothing else runs."""
        if not any(s.live for s in self.servers.values()):
            self._fail_queued(self._all_down())
            return
        if self._running:
            return  # a job may still come back, or a server return meanwhile
        for model, queue in self.queues.items():
            if queue and not any(s.live and self._can(s, model) for s in self.servers.values()):
                error = self._nobody_has(model)
                while queue:
                    self._fail(queue.popleft(), error)

    def _fail_queued(self, error: PixeryError, *, everything: bool = False) -> None:
        for queue in self.queues.values():
            while queue:
                self._fail(queue.popleft(), error)
        if everything:
            for i in list(self.pending):
                if self.batch.results[i] is None:
                    self._fail(i, error)

    def _fail(self, i: int, error: PixeryError) -> None:
        self.batch.results[i] = JobFailure(self.batch.jobs[i], error)
        self.pending.discard(i)
        self.batch.notify()

    def _reasons(self, servers: Sequence[_Server]) -> str:
        return "; ".join(
            f"{n} ({mask_url(s.url)}): {s.reason or 'down'}"
            for n, s in enumerate(self.servers.values(), 1)
            if s in servers
        )

    def _all_down(self) -> PixeryError:
        servers = list(self.servers.values())
        return ConnectionFailedError(
            f"All {len(servers)} of your self-hosted servers are down ({self._reasons(servers)}); "
            "retry_failed() runs the rest once one is back.",
            reason="every server down",
        )

    def _nobody_has(self, model: str) -> PixeryError:
        down = [s for s in self.servers.values() if not s.live and self._can(s, model)]
        if down:
            return ConnectionFailedError(
                f"The servers that have {model} are down ({self._reasons(down)}); "
                "retry_failed() runs these jobs again once one is back.",
                reason="its servers down",
            )
        return ModelUnavailableError(
            f"{model} is not downloaded on any of your self-hosted servers that are up.",
            provider="selfhosted",
            reason="not downloaded",
        )

    # -- waiting ----------------------------------------------------------------------------

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def _changed(self) -> None:
        await self._tick.wait()
