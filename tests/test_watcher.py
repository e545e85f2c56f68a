"""ServerWatcher: the status one panel shows, its re-check schedule, and busy-not-offline."""

from __future__ import annotations

import asyncio
import time

import pytest
from env_helpers import Env

from pixery_widgets.core.config import Settings
from pixery_widgets.core.types import HealthInfo, SelfHostedStatus, ServerState
from pixery_widgets.session.generate import agenerate
from pixery_widgets.session.watcher import (
    HEALTHY_INTERVAL,
    OFFLINE_BACKOFF,
    ServerWatcher,
    next_delay,
)

URL = "http://203.0.113.7:8000"


def healthy(url: str = URL) -> SelfHostedStatus:
    health = HealthInfo(
        status="healthy",
        current_model="animagine",
        available_models=("animagine", "pony"),
        gpu_name="RTX 4090",
        idle_seconds=120.0,
        idle_timeout_minutes=30.0,
    )
    return SelfHostedStatus(ServerState.HEALTHY, url=url, health=health, loras=("detail",))


def offline(url: str = URL) -> SelfHostedStatus:
    return SelfHostedStatus(ServerState.OFFLINE, url=url, reason="connection refused")


class ScriptedChecks:
    """A check that answers from a list, recording each call."""

    def __init__(self, *answers: SelfHostedStatus | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, settings: Settings) -> SelfHostedStatus:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class RecordingSleep:
    """Records each requested delay; stops the loop after ``limit`` sleeps."""

    def __init__(self, limit: int) -> None:
        self.delays: list[float] = []
        self.limit = limit
        self.done = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.limit:
            self.done.set()
            await asyncio.Event().wait()  # park the loop here until cancelled
        await asyncio.sleep(0)


# -- the schedule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "failures", "delay"),
    [
        (ServerState.NOT_CONFIGURED, 0, None),
        (ServerState.HEALTHY, 0, HEALTHY_INTERVAL),
        (ServerState.BUSY, 0, HEALTHY_INTERVAL),
        (ServerState.OFFLINE, 1, 5.0),
        (ServerState.OFFLINE, 2, 10.0),
        (ServerState.OFFLINE, 3, 20.0),
        (ServerState.OFFLINE, 4, 40.0),
        (ServerState.OFFLINE, 5, 60.0),
        (ServerState.OFFLINE, 50, 60.0),
    ],
)
def test_next_check_waits_30s_while_healthy_and_backs_off_while_offline(state, failures, delay):
    assert next_delay(SelfHostedStatus(state, url=URL), failures) == delay


def test_polling_backs_off_while_offline_then_settles_at_30s_once_healthy(tmp_path):
    env = Env(tmp_path, SELFHOSTED_API_URL=URL)
    checks = ScriptedChecks(*[offline()] * 6, healthy())
    sleep = RecordingSleep(limit=8)

    async def body():
        watcher = ServerWatcher(load=env.load, check=checks, sleep=sleep)
        assert watcher.start()
        await asyncio.wait_for(sleep.done.wait(), 5)
        watcher.close()
        return watcher

    watcher = asyncio.run(body())
    assert sleep.delays == [*OFFLINE_BACKOFF, 60.0, HEALTHY_INTERVAL, HEALTHY_INTERVAL]
    assert watcher.status.state is ServerState.HEALTHY
    assert watcher.failures == 0


def test_not_configured_is_known_without_a_check_and_nothing_polls(tmp_path):
    checks = ScriptedChecks(healthy())

    async def body():
        watcher = ServerWatcher(load=Env(tmp_path).load, check=checks)
        watcher.start()
        await asyncio.sleep(0.05)
        return watcher

    watcher = asyncio.run(body())
    assert watcher.status.state is ServerState.NOT_CONFIGURED
    assert checks.calls == 0
    assert not watcher.polling


def test_construction_without_a_running_loop_waits_for_the_first_refresh(tmp_path):
    checks = ScriptedChecks(healthy())
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=URL).load, check=checks)
    assert watcher.start() is False
    assert watcher.status.state is ServerState.CHECKING
    assert checks.calls == 0
    status = asyncio.run(watcher.refresh())
    assert status.state is ServerState.HEALTHY
    assert checks.calls == 1


def test_a_crashing_check_is_shown_in_the_status_and_polling_goes_on(tmp_path):
    checks = ScriptedChecks(RuntimeError("kaboom"), healthy())
    sleep = RecordingSleep(limit=2)
    seen: list[tuple[ServerState, str | None]] = []

    async def body():
        watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=URL).load, check=checks)
        watcher._sleep = sleep
        watcher.subscribe(lambda w: seen.append((w.status.state, w.error)))
        watcher.start()
        await asyncio.wait_for(sleep.done.wait(), 5)
        watcher.close()
        return watcher

    watcher = asyncio.run(body())
    states = [state for state, _error in seen]
    assert ServerState.HEALTHY in states, seen
    before_healthy = seen[: states.index(ServerState.HEALTHY)]
    assert any(
        state is ServerState.OFFLINE and "kaboom" in (error or "")
        for state, error in before_healthy
    ), seen  # the crash was shown before the good answer replaced it
    assert sleep.delays[0] == OFFLINE_BACKOFF[0]
    assert watcher.status.state is ServerState.HEALTHY  # it went on checking
    assert watcher.error is None  # and the error cleared with the good answer


def test_the_crash_message_is_kept_until_a_good_answer(tmp_path):
    checks = ScriptedChecks(RuntimeError("kaboom"))
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=URL).load, check=checks)
    status = asyncio.run(watcher.check_now())
    assert status.state is ServerState.OFFLINE
    assert "kaboom" in (watcher.error or "")


def test_a_broken_listener_does_not_stop_the_others_and_is_logged(tmp_path, caplog):
    watcher = ServerWatcher(
        load=Env(tmp_path, SELFHOSTED_API_URL=URL).load, check=ScriptedChecks(healthy())
    )
    heard = []
    watcher.subscribe(lambda w: 1 / 0)
    watcher.subscribe(lambda w: heard.append(w.status.state))
    asyncio.run(watcher.check_now())
    assert heard[-1] is ServerState.HEALTHY
    failures = [r for r in caplog.records if r.exc_info and r.levelname == "ERROR"]
    assert failures and failures[0].exc_info[0] is ZeroDivisionError  # with its traceback
    assert watcher.error is None  # a display's bug is not the server's status


def test_reload_picks_up_a_new_url_and_starts_over_at_checking(tmp_path):
    env = Env(tmp_path)
    checks = ScriptedChecks(healthy("http://198.51.100.2:8000"))
    watcher = ServerWatcher(load=env.load, check=checks)
    assert watcher.status.state is ServerState.NOT_CONFIGURED
    env.values["SELFHOSTED_API_URL"] = "http://198.51.100.2:8000"
    watcher.reload_settings()
    assert watcher.status.state is ServerState.CHECKING
    assert asyncio.run(watcher.refresh()).state is ServerState.HEALTHY


def test_reload_reads_the_dotenv_file_afresh(tmp_path):
    env = Env(tmp_path)
    watcher = ServerWatcher(load=env.load, check=ScriptedChecks(healthy()))
    (tmp_path / ".env").write_text(f"SELFHOSTED_API_URL={URL}\nFAL_KEY=fal-secret\n")
    asyncio.run(watcher.refresh())
    assert watcher.settings.selfhosted_url == URL
    assert watcher.settings.has_key("fal")
    assert watcher.status.state is ServerState.HEALTHY


def test_own_work_shows_busy_keeps_what_the_server_said_and_sends_no_check(tmp_path):
    checks = ScriptedChecks(healthy())
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=URL).load, check=checks)

    async def body():
        await watcher.check_now()
        with watcher.own_work("loading pony"):
            assert watcher.status.state is ServerState.BUSY
            status = await watcher.check_now()
        return status

    status = asyncio.run(body())
    assert checks.calls == 1
    assert status.state is ServerState.BUSY
    assert status.reason == "loading pony"
    assert status.health is not None and status.health.gpu_name == "RTX 4090"
    assert status.loras == ("detail",)


def test_idle_time_and_shutdown_countdown_follow_the_clock(tmp_path):
    now = [1000.0]
    watcher = ServerWatcher(
        load=Env(tmp_path, SELFHOSTED_API_URL=URL).load,
        check=ScriptedChecks(healthy()),
        clock=lambda: now[0],
    )
    asyncio.run(watcher.check_now())
    assert watcher.idle_seconds() == 120.0
    assert watcher.seconds_until_shutdown() == 30 * 60 - 120
    now[0] += 60
    assert watcher.idle_seconds() == 180.0
    assert watcher.seconds_until_shutdown() == 30 * 60 - 180


# -- against the simulator -----------------------------------------------------------------


def test_closed_port_is_offline_at_once(tmp_path, closed_port_url):
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=closed_port_url).load)
    started = time.monotonic()
    status = asyncio.run(watcher.check_now())
    assert time.monotonic() - started < 2.0
    assert status.state is ServerState.OFFLINE
    assert "refused" in (status.reason or "")
    assert watcher.failures == 1


def test_hanging_server_is_offline_timed_out(tmp_path, hanging_port):
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=hanging_port).load)
    started = time.monotonic()
    status = asyncio.run(watcher.check_now())
    assert time.monotonic() - started < 2.5 + 0.5
    assert status.state is ServerState.OFFLINE
    assert "timed out" in (status.reason or "")


def test_a_server_started_later_is_found_by_refresh(tmp_path, sim_factory, closed_port_url):
    port = int(closed_port_url.rsplit(":", 1)[1])
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=closed_port_url).load)

    async def body():
        first = await watcher.check_now()
        sim_factory(port=port)
        second = await watcher.refresh()
        return first, second

    first, second = asyncio.run(body())
    assert first.state is ServerState.OFFLINE
    assert second.state is ServerState.HEALTHY
    assert second.health is not None and second.health.gpu_name


def test_no_health_check_is_sent_during_our_own_generation(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=1.5)
    settings = Env(tmp_path, SELFHOSTED_API_URL=sim.url).load()
    watcher = ServerWatcher(settings, load=lambda: settings)

    async def body():
        await watcher.check_now()
        generating = asyncio.create_task(agenerate("a cat", "animagine", seed=1, settings=settings))
        while not any(r.path == "/generate" for r in sim.request_log):
            await asyncio.sleep(0.02)
        healths_before = sum(r.path == "/health" for r in sim.request_log)
        status = await watcher.check_now()
        healths_after = sum(r.path == "/health" for r in sim.request_log)
        await generating
        return status, healths_before, healths_after

    status, before, after = asyncio.run(body())
    assert status.state is ServerState.BUSY
    assert after == before
    assert status.health is not None  # the GPU name etc. stay on show


def test_refresh_restarts_the_schedule_from_its_own_answer(tmp_path):
    env = Env(tmp_path, SELFHOSTED_API_URL=URL)
    checks = ScriptedChecks(healthy(), offline())
    delays: list[float] = []

    async def park(delay: float) -> None:  # record, then wait until cancelled
        delays.append(delay)
        await asyncio.Event().wait()

    async def body():
        watcher = ServerWatcher(load=env.load, check=checks, sleep=park)
        watcher.start()
        while not delays:  # healthy: the loop waits 30 s
            await asyncio.sleep(0)
        await watcher.refresh()  # offline now: the next check comes after 5 s, not 30
        while len(delays) < 2:
            await asyncio.sleep(0)
        watcher.close()

    asyncio.run(asyncio.wait_for(body(), 5))
    assert delays == [HEALTHY_INTERVAL, OFFLINE_BACKOFF[0]]


def test_checks_pause_after_quiet_time_so_an_idle_server_can_shut_down(tmp_path):
    """Every /health resets the server's idle clock: an unused panel must stop asking."""
    env = Env(tmp_path, SELFHOSTED_API_URL=URL)
    checks = ScriptedChecks(healthy())
    now = [0.0]

    async def advance(delay: float) -> None:
        now[0] += delay
        await asyncio.sleep(0)

    async def body():
        watcher = ServerWatcher(
            load=env.load, check=checks, sleep=advance, clock=lambda: now[0], quiet_after=100.0
        )
        watcher.start()
        for _ in range(200):
            if watcher.paused:
                break
            await asyncio.sleep(0)
        calls_when_paused = checks.calls
        for _ in range(20):
            await asyncio.sleep(0)
        assert checks.calls == calls_when_paused  # nothing more is sent while paused
        with watcher.own_work("drawing"):  # using the server resumes the checks
            assert not watcher.paused
        await watcher.refresh(reload=False)
        resumed = checks.calls
        watcher.close()
        return calls_when_paused, resumed

    calls_when_paused, resumed = asyncio.run(body())
    # 0 s, 30, 60, 90 (still < 100 s of quiet), then 120 ≥ 100: paused after 5 checks.
    assert calls_when_paused == 5
    assert resumed > calls_when_paused
