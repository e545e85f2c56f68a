"""A panel's view of several servers: one watcher each, re-checked and backing off on its
own, combined; the status lines a StatusIndicator draws. Real HTTP against SimPool."""

from __future__ import annotations

import asyncio

from env_helpers import Env
from panel_helpers import run, until

import pixery_widgets as px
from pixery_widgets.core.types import ServerState
from pixery_widgets.session.pool_watcher import PoolWatcher
from pixery_widgets.session.watcher import HEALTHY_INTERVAL, OFFLINE_BACKOFF
from pixery_widgets.widgets import PixeryPanel, StatusIndicator
from pixery_widgets.widgets.server_lines import server_lines
from pixery_widgets.widgets.status import status_text


def test_one_server_is_watched_exactly_as_before(tmp_path, sim):
    async def body():
        watcher = PoolWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        assert not watcher.is_pool and watcher.members == []
        status = await watcher.refresh()
        assert status.state is ServerState.HEALTHY and status.servers == ()
        assert status.summary().startswith("Healthy: Simulated RTX 4090, animagine")
        with watcher.own_work("loading pony"):
            assert watcher.status.state is ServerState.BUSY
            assert watcher.status.reason == "loading pony"
        watcher.close()

    run(body)


def test_each_server_is_rechecked_and_backs_off_on_its_own(tmp_path, pool_factory, closed_port_url):
    pool = pool_factory(1)
    waits: list[float] = []

    async def recorded_sleep(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0.01)

    async def body():
        env = Env(tmp_path, SELFHOSTED_API_URL=f"{pool.urls[0]}, {closed_port_url}")
        watcher = PoolWatcher(load=env.load, sleep=recorded_sleep)
        watcher.start()
        up, down = watcher.members
        await until(lambda: down.failures >= 4, what="four failed checks of the closed port")
        watcher.close()
        return up, down

    up, down = run(body)
    assert up.status.state is ServerState.HEALTHY and up.failures == 0
    assert down.status.state is ServerState.OFFLINE and down.status.reason == "connection refused"
    assert HEALTHY_INTERVAL in waits  # the healthy one keeps its 30 s rhythm...
    backoff = [w for w in waits if w != HEALTHY_INTERVAL]
    assert backoff[:4] == list(OFFLINE_BACKOFF[:4])  # ...while the other backs off alone


def test_refresh_after_editing_env_adds_and_drops_servers(tmp_path, pool_factory):
    pool = pool_factory(3)
    env = Env(tmp_path, SELFHOSTED_API_URL=pool.urls[0])

    async def body():
        watcher = PoolWatcher(load=env.load)
        await watcher.refresh()
        assert not watcher.is_pool and watcher.status.url == pool.urls[0]
        announced: list[tuple[str, ...]] = []
        from pixery_widgets.providers.servers import watch_server_list

        unwatch = watch_server_list(announced.append)
        env.values["SELFHOSTED_API_URL"] = pool.selfhosted_api_url
        await watcher.refresh()
        assert [m.settings.selfhosted_url for m in watcher.members] == pool.urls
        assert watcher.status.summary() == "3 of 3 servers up"
        assert announced[-1] == tuple(pool.urls)  # a running batch hears of it
        env.values["SELFHOSTED_API_URL"] = f"{pool.urls[2]},{pool.urls[0]}"
        await watcher.refresh()
        assert [m.settings.selfhosted_url for m in watcher.members] == [pool.urls[2], pool.urls[0]]
        env.values["SELFHOSTED_API_URL"] = pool.urls[1]
        await watcher.refresh()
        assert not watcher.is_pool and watcher.status.url == pool.urls[1]
        del env.values["SELFHOSTED_API_URL"]
        await watcher.refresh()
        assert watcher.status.state is ServerState.NOT_CONFIGURED
        unwatch()
        watcher.close()

    run(body)


def test_a_server_shows_drawing_while_our_image_is_in_flight_there(tmp_path, pool_factory):
    pool = pool_factory(3, gen_seconds=0.4, start_loaded=("animagine", "animagine", "pony"))

    async def body():
        env = Env(tmp_path, SELFHOSTED_API_URL=pool.selfhosted_api_url)
        watcher = PoolWatcher(load=env.load)
        await watcher.refresh()
        task = asyncio.create_task(px.agenerate("on three", "pony", settings=watcher.settings))
        await until(lambda: watcher.members[2].status.state is ServerState.BUSY, what="busy")
        states = [m.status.state for m in watcher.members]
        assert states == [ServerState.HEALTHY, ServerState.HEALTHY, ServerState.BUSY]
        assert watcher.status.summary() == "3 of 3 servers up, 1 drawing"
        line = server_lines(watcher)[2][1]
        assert line.startswith("3 · drawing an image for this notebook") and "pony loaded" in line
        await task
        await until(lambda: watcher.members[2].status.state is ServerState.HEALTHY, what="idle")
        watcher.close()

    run(body)


def test_status_lines_for_three_servers_one_down_with_what_their_hours_cost(tmp_path, pool_factory):
    pool = pool_factory(3, start_loaded=("animagine", "pony", "noobai"))
    env = Env(tmp_path, SELFHOSTED_API_URL=pool.selfhosted_api_url, SELFHOSTED_COST_PER_HOUR="0.30")

    async def body():
        panel = PixeryPanel(load=env.load)
        await panel.refresh()
        pool.stop(1)
        await panel.refresh()
        return panel

    panel = run(body)
    line, detail = status_text(panel.watcher)
    assert line == "2 of 3 servers up"
    assert detail.startswith("$0.30/h each · $") and "so far" in detail
    lines = server_lines(panel.watcher)
    assert [state for state, _, _ in lines] == [
        ServerState.HEALTHY,
        ServerState.OFFLINE,
        ServerState.HEALTHY,
    ]
    first, second, third = (words for _, words, _ in lines)
    assert first.startswith("1 · Simulated RTX 4090 · animagine loaded · idle ")
    assert "shuts itself down in 60 min (idling until then: $0.30)" in first
    assert " since " in first  # what it cost since this kernel first saw it
    # A kept-alive connection to the server that just stopped may be seen dropping before
    # a new one is refused; either way the line says it is offline and why, in words.
    assert second.startswith(
        ("2 · offline: connection refused · checking", "2 · offline: connection dropped · checking")
    )
    assert "checking again in 5 s" in second
    assert third.startswith("3 · Simulated RTX 4090 · noobai loaded")
    assert [url for _, _, url in lines] == pool.urls
    html = panel.status_indicator.text.value
    assert html.count('class="pixery-server"') == 3
    assert 'data-state="offline"' in html and "2 of 3 servers up" in html
    labels = {e.id: e.label for e in panel.menu if e.is_local}
    assert labels == {
        "animagine": "animagine · loaded on 1",
        "pony": "pony",
        "noobai": "noobai · loaded on 3",
    }
    panel.close()


def test_one_server_with_a_rate_says_what_idling_costs(tmp_path, sim):
    env = Env(tmp_path, SELFHOSTED_API_URL=sim.url, SELFHOSTED_COST_PER_HOUR="0.60")

    async def body():
        indicator = StatusIndicator(PoolWatcher(load=env.load))
        await indicator.watcher.refresh()
        return indicator

    indicator = run(body)
    line, detail = status_text(indicator.watcher)
    assert line.startswith("Healthy: Simulated RTX 4090")
    assert "shuts itself down in 60 min (idling until then: $0.60)" in detail
    assert " since " in detail and 'class="pixery-server"' not in indicator.text.value
    indicator.watcher.close()


def test_a_bad_rate_is_shown_on_the_status(tmp_path, pool_factory):
    pool = pool_factory(2)
    env = Env(
        tmp_path, SELFHOSTED_API_URL=pool.selfhosted_api_url, SELFHOSTED_COST_PER_HOUR="cheap"
    )

    async def body():
        watcher = PoolWatcher(load=env.load)
        await watcher.refresh()
        return watcher

    watcher = run(body)
    assert "SELFHOSTED_COST_PER_HOUR must be a number" in status_text(watcher)[1]
    watcher.close()


def test_prewarming_on_a_pool_loads_the_model_where_its_next_image_goes(tmp_path, pool_factory):
    pool = pool_factory(2, start_loaded=("animagine", "animagine"))
    pool[0].config.missing = {"noobai"}
    env = Env(tmp_path, SELFHOSTED_API_URL=pool.selfhosted_api_url)

    async def body():
        panel = PixeryPanel(load=env.load)
        await panel.refresh()
        assert panel.choose("noobai")
        await panel.wait_idle()
        return panel

    panel = run(body)
    switched = [[r.json["model"] for r in s.request_log if r.path == "/switch-model"] for s in pool]
    assert switched == [[], ["noobai"]]
    assert next(e for e in panel.menu if e.id == "noobai").label == "noobai · loaded on 2"
    panel.close()
