"""The server's state is known once /health answers: a hanging detail route must not hide it.

Against the simulator over real loopback HTTP, with ``/models`` or ``/loras`` armed to
hang until the simulator stops (far longer than any bound in these tests), and the
details' old 10 s timeout raised to an hour, so only a status that does not wait for the
details can arrive at all. ``asyncio.wait_for`` bounds each test instead of the wall clock.
"""

from __future__ import annotations

import asyncio

import pytest

from pixery_widgets.core.config import Settings
from pixery_widgets.core.types import SelfHostedStatus, ServerState
from pixery_widgets.providers import selfhosted
from pixery_widgets.providers.status import acheck_with_early_health
from pixery_widgets.session.watcher import ServerWatcher

#: How long a test waits for what it expects; the hang lasts until the simulator stops.
BOUND = 20.0


@pytest.fixture(autouse=True)
def _details_would_wait_an_hour(monkeypatch):
    """Before the fix a check waited INFO_TIMEOUT for /models and /loras."""
    monkeypatch.setattr(selfhosted, "INFO_TIMEOUT", 3600.0)


@pytest.mark.parametrize("hanging", ["/models", "/loras"])
def test_a_check_is_healthy_at_once_while_a_detail_route_hangs(sim, hanging):
    sim.set_fault(hanging, "hang")  # every request to it, until the simulator stops
    heard: list[SelfHostedStatus] = []

    async def check() -> SelfHostedStatus:
        return await asyncio.wait_for(
            acheck_with_early_health(Settings(selfhosted_url=sim.url), on_health=heard.append),
            BOUND,
        )

    status = asyncio.run(check())
    assert [s.state for s in heard] == [ServerState.HEALTHY]  # told before any detail came
    assert heard[0].models is None and heard[0].loras == ()
    assert status.state is ServerState.HEALTHY
    assert status.local_models == ("animagine", "pony", "noobai")
    if hanging == "/models":  # what did answer is there; what hung is left for the next check
        assert status.models is None and status.loras == (
            "detail_tweaker",
            "add_more_details",
            "pixel_art",
        )
    else:
        assert status.models is not None and "pony" in status.models and status.loras == ()


def test_the_watcher_publishes_healthy_before_the_hanging_details_and_then_what_came(sim):
    sim.set_fault("/models", "hang")
    settings = Settings(selfhosted_url=sim.url)

    async def watch() -> tuple[list[tuple[ServerState, bool]], bool, SelfHostedStatus]:
        watcher = ServerWatcher(settings, load=lambda: settings)
        seen: list[tuple[ServerState, bool]] = []
        healthy = asyncio.Event()

        def listener(w: ServerWatcher) -> None:
            seen.append((w.status.state, w.checking))
            if w.status.state is ServerState.HEALTHY:
                healthy.set()

        watcher.subscribe(listener)
        check = asyncio.ensure_future(watcher.check_now())
        await asyncio.wait_for(healthy.wait(), BOUND)
        details_pending = not check.done()
        final = await asyncio.wait_for(check, BOUND)
        watcher.close()
        return seen, details_pending, final

    seen, details_pending, final = asyncio.run(watch())
    # checking → healthy with details to come → healthy, done
    assert seen == [
        (ServerState.CHECKING, True),
        (ServerState.HEALTHY, True),
        (ServerState.HEALTHY, False),
    ], seen
    assert details_pending
    assert final.state is ServerState.HEALTHY and final.models is None
    assert final.loras == ("detail_tweaker", "add_more_details", "pixel_art")


def test_the_early_status_keeps_the_last_details_so_the_menu_does_not_flicker(sim):
    settings = Settings(selfhosted_url=sim.url)

    async def watch() -> list[SelfHostedStatus]:
        watcher = ServerWatcher(settings, load=lambda: settings)
        await asyncio.wait_for(watcher.check_now(), BOUND)  # details known
        sim.set_fault("/loras", "hang")
        shown: list[SelfHostedStatus] = []
        watcher.subscribe(lambda w: shown.append(w.status))
        await asyncio.wait_for(watcher.check_now(), BOUND)
        watcher.close()
        return shown

    shown = asyncio.run(watch())
    early, final = shown[-2], shown[-1]
    assert early.state is final.state is ServerState.HEALTHY
    assert early.loras == ("detail_tweaker", "add_more_details", "pixel_art")  # the last ones
    assert final.loras == ()  # this check's /loras never came
    assert final.models is not None and early.models == final.models
