"""Several servers, checked over real loopback HTTP: one status each, at once, combined;
the menu that follows from them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import pixery_widgets as px
from pixery_widgets import Settings
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers.selfhosted import HEALTH_TIMEOUT
from pixery_widgets.providers.servers import combine_statuses, sighting
from pixery_widgets.session.menu import build_menu


def run(coro):
    return asyncio.run(coro)


def pool_settings(*urls: str, **kw) -> Settings:
    return Settings(selfhosted_urls=tuple(urls), **kw)


def test_each_server_gets_its_own_status_in_list_order(pool_factory, closed_port_url):
    pool = pool_factory(2, start_loaded=("animagine", "pony"))
    settings = pool_settings(pool.urls[0], closed_port_url, pool.urls[1])
    statuses = run(px.acheck_servers(settings))
    assert [s.url for s in statuses] == [pool.urls[0], closed_port_url, pool.urls[1]]
    assert [s.state for s in statuses] == [
        ServerState.HEALTHY,
        ServerState.OFFLINE,
        ServerState.HEALTHY,
    ]
    assert statuses[1].reason == "connection refused"
    assert [s.health.current_model for s in (statuses[0], statuses[2])] == ["animagine", "pony"]
    assert statuses[0].models is not None and statuses[0].loras  # the details, as for one server


@pytest.fixture
def hanging_servers() -> Iterator[tuple[list[str], list[float]]]:
    """Three ports that accept a connection and never answer; the moment of each accept."""
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    accepted: list[float] = []
    held: list[socket.socket] = []
    done = threading.Event()

    def accept(listener: socket.socket) -> None:
        listener.settimeout(0.05)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
                accepted.append(time.monotonic())
            except (TimeoutError, OSError):
                continue

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in listeners]
    for thread in threads:
        thread.start()
    yield [f"http://127.0.0.1:{s.getsockname()[1]}" for s in listeners], accepted
    done.set()
    for thread in threads:
        thread.join(1.0)
    for conn in held:
        conn.close()
    for listener in listeners:
        listener.close()


def test_servers_are_checked_at_once_each_under_the_two_second_rule(hanging_servers):
    urls, accepted = hanging_servers
    started = time.monotonic()
    statuses = run(px.acheck_servers(pool_settings(*urls)))
    assert [s.state for s in statuses] == [ServerState.OFFLINE] * 3
    assert [s.reason for s in statuses] == ["timed out"] * 3
    # Every server was asked before the first one's 2 s could have run out: not one
    # after another (the second would then be asked only after the first gave up).
    assert len(accepted) == 3
    assert max(accepted) < started + HEALTH_TIMEOUT


def test_the_combined_status_is_healthy_when_any_server_is(pool_factory, closed_port_url):
    pool = pool_factory(2)
    status = run(px.acheck_selfhosted(pool_settings(*pool.urls, closed_port_url)))
    assert status.state is ServerState.HEALTHY and status.reachable
    assert status.summary() == "2 of 3 servers up"
    assert len(status.servers) == 3 and status.servers[2].state is ServerState.OFFLINE
    assert status.local_models == ("animagine", "pony", "noobai")

    pool.stop()
    down = run(px.acheck_selfhosted(pool_settings(*pool.urls, closed_port_url)))
    assert down.state is ServerState.OFFLINE and not down.reachable
    assert down.summary() == "Offline: none of 3 servers answers"
    assert down.local_models == ("animagine", "pony", "noobai")  # what they listed earlier


def test_a_server_drawing_our_image_is_busy_while_the_others_are_healthy(pool_factory):
    pool = pool_factory(2, gen_seconds=1.0)
    settings = pool_settings(*pool.urls)
    lone = Settings(selfhosted_url=pool.urls[0], archive_dir=settings.archive_dir)

    async def scenario():
        drawing = asyncio.create_task(px.agenerate("slow", settings=lone, archive=False))
        while not pool[0].request_log or pool[0].request_log[-1].path != "/generate":
            await asyncio.sleep(0.01)
        statuses = await px.acheck_servers(settings, timeout=0.2)
        await drawing
        return statuses

    statuses = run(scenario())
    assert [s.state for s in statuses] == [ServerState.BUSY, ServerState.HEALTHY]
    assert statuses[0].reason == "drawing an image for this notebook"


def test_check_servers_is_the_sync_twin_and_reads_the_environment(pool_factory, monkeypatch):
    pool = pool_factory(3)
    monkeypatch.setenv("SELFHOSTED_API_URL", pool.selfhosted_api_url)
    statuses = px.check_servers()
    assert [s.url for s in statuses] == pool.urls
    assert all(s.state is ServerState.HEALTHY for s in statuses)
    combined = px.check_selfhosted()
    assert combined.summary() == "3 of 3 servers up"
    assert px.model_menu(combined, keys=())[0].group == "Local · 3 × Simulated RTX 4090"
    assert all(sighting(url) is not None for url in pool.urls)  # remembered for the pool


def test_no_server_or_a_bad_list_gives_one_status_that_says_why(monkeypatch):
    monkeypatch.delenv("SELFHOSTED_API_URL", raising=False)
    (status,) = px.check_servers()
    assert status.state is ServerState.NOT_CONFIGURED
    monkeypatch.setenv("SELFHOSTED_API_URL", "http://a:1, nonsense")
    (status,) = px.check_servers()
    assert status.state is ServerState.NOT_CONFIGURED and "address 2" in (status.reason or "")


def test_the_menu_is_the_union_of_the_servers_menus(pool_factory, closed_port_url):
    pool = pool_factory(2, start_loaded=("animagine", "pony"))
    pool[0].config.update({"available_models": ["animagine", "pony"], "missing": {"pony"}})
    pool[1].config.update({"available_models": ["pony", "noobai"], "missing": {"noobai"}})
    status = run(px.acheck_selfhosted(pool_settings(*pool.urls, closed_port_url)))
    menu = [e for e in build_menu(status, ()) if e.is_local]
    by_id = {e.id: e for e in menu}
    assert [e.id for e in menu] == ["animagine", "pony", "noobai"]
    assert by_id["animagine"].label == "animagine · loaded on 1" and by_id["animagine"].enabled
    assert by_id["pony"].label == "pony · loaded on 2" and by_id["pony"].enabled  # on 2, not 1
    assert not by_id["noobai"].enabled and by_id["noobai"].reason == "not downloaded"
    assert menu[0].group == "Local · 3 servers"  # the third never answered: GPU unknown
    assert build_menu(status, ())[0].is_local  # healthy: local models first


def test_a_model_only_an_offline_server_has_is_greyed_offline(pool_factory):
    pool = pool_factory(2)
    pool[1].config.update({"available_models": ["animagine", "custom-xl"]})
    settings = pool_settings(*pool.urls)
    run(px.acheck_servers(settings))  # both answer once: their menus are remembered
    pool.stop(1)
    status = run(px.acheck_selfhosted(settings))
    entry = next(e for e in build_menu(status, ()) if e.id == "custom-xl")
    assert not entry.enabled and entry.reason == "offline"
    animagine = next(e for e in build_menu(status, ()) if e.id == "animagine")
    assert animagine.enabled and animagine.label == "animagine · loaded on 1"
    assert animagine.group == "Local · 2 servers"  # one GPU unknown now


def test_one_status_combines_to_itself():
    status = px.SelfHostedStatus(ServerState.OFFLINE, url="http://a:1", reason="timed out")
    assert combine_statuses([status]) is status
