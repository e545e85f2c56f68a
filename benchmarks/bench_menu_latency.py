"""Menu latency: from building the panel's logic to the reordered menu (local models first).

The simulator answers each endpoint 100 ms late. Measured: the panel's own
session logic (``PanelController`` following a ``ServerWatcher``: ``/health``,
then ``/models`` and ``/loras`` concurrently). Baseline: the three requests one
after another, then the same menu rule. Target: ≤ 0.7 × baseline.

Where the 100 ms sits matters. The real server handles one request at a time,
but a health or menu answer takes it well under 100 ms (docs/backends.md); the
100 ms a notebook feels is the network's round trip to a rented GPU, which
concurrent requests share. So the judged row puts the delay outside the
server's lock. A second row, for information, puts it inside the lock (slow
handlers): there no client can overlap anything and the ratio tends to 1.
Both start from an empty connection pool, as a fresh panel does, with the
shared httpx client already made (making one costs tens of milliseconds once
per kernel, shown in its own row: it is not what this target is about). The
delay is per request, so opening the second connection costs no extra round
trip here (on a real WAN it would cost one).
"""

from __future__ import annotations

import asyncio
import time

from ._harness import Result, bench_settings, close_shared_client, median, paired, sim_process

LATENCY = 0.1
TARGET = 0.7


async def _panel_menu(settings: object) -> None:
    """Construction of the panel's logic → its menu lists a local model first."""
    from pixery_widgets.providers.status import forget_known_models
    from pixery_widgets.session.controller import PanelController
    from pixery_widgets.session.watcher import ServerWatcher

    forget_known_models()
    reordered = asyncio.Event()
    watcher = ServerWatcher(settings)  # type: ignore[arg-type]
    controller = PanelController(watcher)
    controller.subscribe(
        lambda c, _what: reordered.set() if c.menu and c.menu[0].is_local else None
    )
    try:
        watcher.start()
        await asyncio.wait_for(reordered.wait(), 10)
    finally:
        controller.close()


async def _sequential_menu(settings: object) -> None:
    """Baseline: /health, /models, /loras one after another, then the menu rule."""
    from pixery_widgets.core.types import SelfHostedStatus, ServerState
    from pixery_widgets.providers.selfhosted import SelfHostedClient
    from pixery_widgets.session.menu import build_menu

    url = settings.selfhosted_url  # type: ignore[attr-defined]
    client = SelfHostedClient(url)
    health = await client.health()
    models = await client.models()
    loras = await client.loras()
    status = SelfHostedStatus(
        ServerState.HEALTHY,
        url=url,
        health=health,
        models=models,
        loras=loras,
        known_models=health.available_models,
        checked_at=time.time(),
    )
    menu = build_menu(status, settings.providers_with_keys)  # type: ignore[attr-defined]
    assert menu[0].is_local, menu[0]


def _measure(serialised: bool, repeats: int) -> tuple[list[float], list[float]]:
    with sim_process(
        latency=LATENCY, serialised=serialised, gen_seconds=0, switch_seconds=0
    ) as sim:
        settings = bench_settings(sim.url)

        async def main() -> tuple[list[float], list[float]]:
            try:
                return await paired(
                    lambda: _panel_menu(settings),
                    lambda: _sequential_menu(settings),
                    repeats,
                    setup=lambda: close_shared_client(reopen=True),
                )
            finally:
                await close_shared_client()

        return asyncio.run(main())


def _client_creation(repeats: int) -> list[float]:
    """Seconds to make the shared httpx client (its TLS context, mostly)."""
    from pixery_widgets.core.http import get_client

    async def main() -> list[float]:
        out = []
        for _ in range(repeats):
            await close_shared_client()
            start = time.perf_counter()
            get_client()
            out.append(time.perf_counter() - start)
        await close_shared_client()
        return out

    return asyncio.run(main())


def run(quick: bool = False) -> list[Result]:
    repeats = 3 if quick else 9
    ours, base = _measure(serialised=False, repeats=repeats)
    ours_h, base_h = _measure(serialised=True, repeats=repeats)
    creation = _client_creation(repeats)
    ms = 1000
    return [
        Result.ratio(
            "menu latency (100 ms network latency per request)",
            median(ours) * ms,
            median(base) * ms,
            "ms",
            at_most=TARGET,
            note=(
                "Panel logic (watcher: /health, then /models + /loras concurrently) against the "
                "three requests in sequence; the delay models round-trip time, outside the "
                "server's one-at-a-time lock. Ideal: 2 of 3 round trips = 0.67×."
            ),
            data={"measured_s": ours, "baseline_s": base, "latency_s": LATENCY},
        ),
        Result.info(
            "menu latency (100 ms handler time, serialised)",
            median(ours_h) * ms,
            median(base_h) * ms,
            "ms",
            note=(
                "Same, with the delay inside the server's lock (each handler takes 100 ms and the "
                "server serves one at a time): no client can overlap, so ~1.0× is expected; "
                "0.7× is out of reach by construction if handler time is what the 100 ms means."
            ),
            data={"measured_s": ours_h, "baseline_s": base_h, "latency_s": LATENCY},
        ),
        Result.info(
            "shared HTTP client creation (once per kernel)",
            median(creation) * ms,
            None,
            "ms",
            note=(
                "httpx.AsyncClient() builds a TLS context (certifi bundle) when made; get_client() "
                "pays it on the first request of a kernel. Excluded from the rows above; it would "
                "eat most of first paint's 50 ms if made synchronously while drawing the panel."
            ),
            data={"seconds": creation},
        ),
    ]
