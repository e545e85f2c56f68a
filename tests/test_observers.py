"""The one observer list and the one way to start background work, and their policies:
a failure is logged with its traceback, never lost, and never stops the rest."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

from pixery_widgets.core.observers import Observers
from pixery_widgets.core.tasks import spawn
from pixery_widgets.session.ledger import CostLedger
from pixery_widgets.session.watcher import ServerWatcher
from tests.test_batch import unplanned_batch


def errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_listeners_hear_every_notify_in_the_order_they_were_added():
    observers: Observers[[str, int]] = Observers()
    heard: list[tuple[str, str, int]] = []
    observers.add(lambda what, n: heard.append(("first", what, n)))
    observers.add(lambda what, n: heard.append(("second", what, n)))
    observers.notify("status", 1)
    observers.notify(what="progress", n=2)
    assert heard == [
        ("first", "status", 1),
        ("second", "status", 1),
        ("first", "progress", 2),
        ("second", "progress", 2),
    ]


def test_a_listener_that_raises_is_logged_with_its_traceback_and_the_others_still_hear(caplog):
    observers: Observers[[int]] = Observers()
    heard: list[int] = []

    def broken(n: int) -> None:
        raise ValueError(f"display broke on {n}")

    observers.add(heard.append)
    observers.add(broken)
    observers.add(lambda n: heard.append(n * 10))
    observers.notify(3)
    observers.notify(4)
    assert heard == [3, 30, 4, 40]
    logged = errors(caplog)
    assert len(logged) == 2
    assert logged[0].name == "pixery_widgets.core.observers"
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is ValueError
    assert "display broke on 3" in str(logged[0].exc_info[1])


def test_unsubscribing_twice_or_removing_a_stranger_is_harmless():
    observers: Observers[[]] = Observers()
    calls: list[str] = []
    unsubscribe = observers.add(lambda: calls.append("a"))
    observers.add(lambda: calls.append("b"))
    unsubscribe()
    unsubscribe()
    observers.remove(print)
    observers.notify()
    assert calls == ["b"] and len(observers) == 1
    observers.clear()
    assert not observers


def test_a_listener_may_unsubscribe_itself_while_being_told():
    observers: Observers[[]] = Observers()
    calls: list[str] = []

    def once() -> None:
        calls.append("once")
        unsubscribe()

    unsubscribe = observers.add(once)
    observers.add(lambda: calls.append("always"))
    observers.notify()
    observers.notify()
    assert calls == ["once", "always", "always"]


def test_every_observable_of_the_package_uses_the_one_policy(tmp_path, caplog):
    """The ledger once let a listener's exception escape into ``record``."""
    from env_helpers import Env

    from pixery_widgets.core.types import Generation

    def broken(*_args: object) -> None:
        raise RuntimeError("broken display")

    ledger = CostLedger()
    ledger.subscribe(broken)
    generation = Generation(
        png_bytes=b"", seed=1, model="m", provider="p", params={}, elapsed_s=0.0, cost_usd=0.5
    )
    ledger.record(generation)  # does not raise
    assert ledger.images == 1

    watcher = ServerWatcher(load=Env(tmp_path).load)
    watcher.subscribe(broken)
    watcher.reload_settings()

    batch = unplanned_batch([])
    batch.subscribe(broken)
    batch.notify()
    assert [str(r.exc_info[1]) for r in errors(caplog) if r.exc_info] == ["broken display"] * 3


def test_the_pools_observables_use_the_one_policy_too(tmp_path, caplog):
    """The pool's watcher once turned a broken display into its own error line."""
    from env_helpers import Env

    from pixery_widgets.providers.in_flight import track_in_flight, watch_in_flight
    from pixery_widgets.providers.servers import announce_servers, watch_server_list
    from pixery_widgets.session.pool_watcher import PoolWatcher

    def broken(*_args: object) -> None:
        raise RuntimeError("broken display")

    heard: list[object] = []
    env = Env(tmp_path, SELFHOSTED_API_URL="http://203.0.113.7:8000, http://203.0.113.8:8000")
    pool = PoolWatcher(load=env.load)
    assert pool.is_pool
    pool.subscribe(broken)
    pool.subscribe(heard.append)
    pool.reload_settings()  # the servers' watchers and the pool's own change are told
    assert heard and all(h is pool for h in heard) and pool.error is None
    pool.close()
    told = [str(r.exc_info[1]) for r in errors(caplog) if r.exc_info]
    assert len(told) == len(heard) and set(told) == {"broken display"}
    caplog.clear()

    unwatch_list = watch_server_list(broken)
    unwatch_flight = watch_in_flight(broken)
    try:
        announce_servers(env.load())  # does not raise
        with track_in_flight("http://203.0.113.9:8000"):  # nor does a generation's start/end
            pass
    finally:
        unwatch_list()
        unwatch_flight()
    said = [str(r.exc_info[1]) for r in errors(caplog) if r.exc_info]
    assert said == ["broken display"] * 3  # the list once, the start and the end
    assert all(r.name == "pixery_widgets.core.observers" for r in errors(caplog))


# -- spawn --------------------------------------------------------------------------------


def test_spawn_keeps_the_task_until_it_ends_and_reports_a_failure_in_words(caplog):
    said: list[str] = []
    tasks: set[asyncio.Task[object]] = set()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise KeyError("gone")

    async def body() -> tuple[bool, bool]:
        task = spawn(fails(), tasks, said.append, name="pixery-test")
        assert task is not None
        held = task in tasks
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # the done callback runs
        return held, task in tasks

    held, still_held = asyncio.run(body())
    assert held and not still_held
    assert said == ["KeyError: 'gone'"]
    logged = errors(caplog)
    assert len(logged) == 1 and "pixery-test" in logged[0].getMessage()
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is KeyError


def test_spawn_without_on_error_still_logs_and_a_cancel_is_not_a_failure(caplog):
    tasks: set[asyncio.Task[object]] = set()

    async def body() -> None:
        fine = spawn(asyncio.sleep(0), tasks)
        broken = spawn(_raise(ZeroDivisionError("x")), tasks)
        parked = spawn(asyncio.Event().wait(), tasks)
        assert fine is not None and broken is not None and parked is not None
        await asyncio.sleep(0)
        parked.cancel()
        await asyncio.gather(fine, broken, parked, return_exceptions=True)
        await asyncio.sleep(0)

    asyncio.run(body())
    logged = errors(caplog)
    assert [r.exc_info[0] for r in logged if r.exc_info] == [ZeroDivisionError]
    assert not tasks


async def _raise(exc: Exception) -> None:
    raise exc


def test_spawn_without_a_running_loop_closes_the_coroutine_unrun():
    ran: list[bool] = []

    async def work() -> None:
        ran.append(True)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail here
        assert spawn(work(), set()) is None
        gc.collect()
    assert ran == []
