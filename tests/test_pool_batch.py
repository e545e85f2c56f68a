"""Batches over a pool of simulators, over real loopback HTTP: every server busy, few
switches, a server killed mid-batch, one coming back, one added, all of them gone."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

import pixery_widgets as px
from pixery_widgets import ConnectionFailedError, ModelUnavailableError, Settings
from pixery_widgets.archive import Archive
from pixery_widgets.session import scheduler


def run(coro):
    return asyncio.run(coro)


def generated(server) -> list[tuple[str, str]]:
    """(prompt, model) of every /generate the simulator was sent, in order."""
    return [
        (r.json["prompt"], r.json["model"]) for r in server.request_log if r.path == "/generate"
    ]


def models_sent(server) -> list[str]:
    return [model for _, model in generated(server)]


def switches(server, start: str | None) -> int:
    sequence = [start, *models_sent(server)] if start else models_sent(server)
    return sum(a != b for a, b in itertools.pairwise(sequence))


@pytest.fixture
def quick_rechecks(monkeypatch):
    """A dead server is re-checked every 50 ms, so a test sees it rejoin at once."""
    monkeypatch.setattr(scheduler, "RECHECK_DELAYS", (0.05,))


def settings_for(pool, tmp_path, **kw) -> Settings:
    return Settings(selfhosted_urls=tuple(pool.urls), archive_dir=tmp_path, **kw)


def test_a_batch_keeps_every_server_busy_and_results_keep_input_order(pool_factory, tmp_path):
    pool = pool_factory(3, gen_seconds=0.05)
    settings = settings_for(pool, tmp_path)
    prompts = [f"harbour {n}" for n in range(12)]
    batch = run(px.arun_batch(prompts, seeds=[5], settings=settings, progress=False))
    assert batch.ok and [g.prompt for g in batch.generations] == prompts
    counts = [len(generated(s)) for s in pool]
    assert sum(counts) == 12 and all(c >= 2 for c in counts), counts
    assert list(batch.per_server.values()) == counts
    assert list(batch.per_server) == pool.urls
    archive = Archive(tmp_path, settings=settings)
    assert {r.id for r in archive.search(batch=batch.id, limit=None)} == {
        g.id for g in batch.generations
    }


def test_servers_with_different_models_loaded_never_switch(pool_factory, tmp_path):
    starts = ("animagine", "pony", "noobai")
    pool = pool_factory(3, start_loaded=starts, gen_seconds=0.02, switch_seconds=0.2)
    settings = settings_for(pool, tmp_path)
    batch = run(
        px.arun_batch(
            [f"p{n}" for n in range(4)], list(starts), seeds=[1], settings=settings, progress=False
        )
    )
    assert batch.ok and len(batch) == 12
    for server, start in zip(pool, starts, strict=True):
        assert models_sent(server) == [start] * 4  # each drew its own model's four
    assert [(g.prompt, g.model) for g in batch.generations] == [
        (f"p{n}", m) for n in range(4) for m in starts
    ]


def test_a_server_leaves_its_model_only_when_its_queue_is_empty_and_once(pool_factory, tmp_path):
    pool = pool_factory(2, start_loaded=("animagine", "animagine"), gen_seconds=0.02)
    settings = settings_for(pool, tmp_path)
    batch = run(
        px.arun_batch(
            [f"q{n}" for n in range(6)],
            ["animagine", "pony"],
            seeds=[1],
            settings=settings,
            progress=False,
        )
    )
    assert batch.ok
    for server in pool:
        sent = models_sent(server)
        assert sent == sorted(sent), sent  # animagine first, then pony, never back
        assert switches(server, "animagine") <= 1
    assert sum("pony" in models_sent(s) for s in pool) >= 1


def test_a_server_killed_mid_batch_loses_nothing_and_its_job_is_drawn_elsewhere(
    pool_factory, tmp_path
):
    pool = pool_factory(4, gen_seconds=0.05)
    settings = settings_for(pool, tmp_path)
    prompts = [f"storm {n}" for n in range(24)]
    killer: list[threading.Thread] = []
    arrived_before: list = []

    def kill_after_eight(snapshot) -> None:
        if snapshot.done >= 8 and not killer:
            arrived_before.extend(px.last_batch().generations)
            killer.append(threading.Thread(target=pool.kill, args=(1,), daemon=True))
            killer[0].start()

    batch = run(px.arun_batch(prompts, seeds=[3], settings=settings, progress=kill_after_eight))
    killer[0].join(5)
    assert batch.ok and batch.failed == []
    assert [g.prompt for g in batch.generations] == prompts
    assert all(g in batch.generations for g in arrived_before)  # the same images, kept
    asked_of_killed = {p for p, _ in generated(pool[1])}
    drawn_by_killed = {
        batch.jobs[i].prompt for i, u in batch.server_of.items() if u == pool.urls[1]
    }
    others = {p for s in (pool[0], pool[2], pool[3]) for p, _ in generated(s)}
    assert asked_of_killed - drawn_by_killed <= others  # died with it: drawn again elsewhere
    assert drawn_by_killed.isdisjoint(others)  # nothing that arrived was drawn twice
    assert batch.per_server[pool.urls[1]] == len(drawn_by_killed) < 24 // 4 + 2
    assert sum(batch.per_server.values()) == 24


def test_a_server_back_from_the_dead_rejoins_the_batch(pool_factory, tmp_path, quick_rechecks):
    pool = pool_factory(2, gen_seconds=0.05)
    settings = settings_for(pool, tmp_path)
    restarted = threading.Event()

    async def scenario():
        batch = await px.start_batch(
            [f"wave {n}" for n in range(30)], seeds=[1], settings=settings, progress=False
        )
        while len(generated(pool[1])) < 2:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(pool.kill, 1)
        before = len(generated(pool[1]))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(pool.start, 1)  # the same port, a fresh server
        restarted.set()
        await batch
        return batch, before

    batch, before = run(scenario())
    assert batch.ok and len(batch.generations) == 30
    assert len(generated(pool[1])) > before  # it drew again after coming back
    assert batch.per_server[pool.urls[1]] >= 1


def test_a_server_added_during_the_batch_joins_it(pool_factory, tmp_path, monkeypatch):
    pool = pool_factory(3, gen_seconds=0.05)
    monkeypatch.setenv("SELFHOSTED_API_URL", ",".join(pool.urls[:2]))
    monkeypatch.setenv("PIXERY_ARCHIVE_DIR", str(tmp_path))

    async def scenario():
        batch = await px.start_batch([f"grow {n}" for n in range(30)], seeds=[1], progress=False)
        while sum(len(generated(s)) for s in pool) < 4:
            await asyncio.sleep(0.01)
        monkeypatch.setenv("SELFHOSTED_API_URL", pool.selfhosted_api_url)  # .env edited
        await px.acheck_servers()  # or the panel's Refresh: the list is read again
        await batch
        return batch

    batch = run(scenario())
    assert batch.ok
    assert len(generated(pool[2])) >= 1 and batch.per_server[pool.urls[2]] >= 1


def test_when_every_server_is_down_the_rest_fail_with_the_reason_and_retry_resumes(
    pool_factory, tmp_path
):
    pool = pool_factory(2, gen_seconds=0.05)
    settings = settings_for(pool, tmp_path)
    killer: list[threading.Thread] = []

    def kill_all_after_four(snapshot) -> None:
        if snapshot.done >= 4 and not killer:
            killer.append(threading.Thread(target=pool.kill, daemon=True))
            killer[0].start()

    prompts = [f"dark {n}" for n in range(16)]
    batch = run(px.arun_batch(prompts, seeds=[2], settings=settings, progress=kill_all_after_four))
    killer[0].join(5)
    arrived = list(batch.generations)
    assert 4 <= len(arrived) < 16 and len(batch.failed) == 16 - len(arrived)
    for failure in batch.failed:
        assert isinstance(failure.error, ConnectionFailedError)
        assert failure.reason == "every server down"
        assert "All 2 of your self-hosted servers are down" in failure.error.message
        assert pool.urls[0] in failure.error.message and pool.urls[1] in failure.error.message
        assert failure.generation is None

    pool.start()
    run(batch.aretry_failed(progress=False))
    assert batch.ok and [g.prompt for g in batch.generations] == prompts
    assert all(g in batch.generations for g in arrived)


def test_a_job_that_every_server_drops_fails_after_a_few_tries(
    pool_factory, tmp_path, quick_rechecks
):
    pool = pool_factory(4)
    for server in pool:
        server.set_fault("/generate", "reset_mid_body")  # healthy, but every image is cut off
    settings = settings_for(pool, tmp_path)
    batch = run(px.arun_batch(["doomed"], seeds=[1], settings=settings, progress=False))
    (failure,) = batch.failed
    assert failure.reason == "connection dropped"
    tries = sum(len(generated(s)) for s in pool)
    assert tries == scheduler.MAX_GIVE_BACKS  # given back twice, then it fails
    assert sorted(len(generated(s)) for s in pool) == [0, 1, 1, 1]  # each time elsewhere


def test_jobs_for_a_model_no_server_has_fail_and_the_others_are_drawn(pool_factory, tmp_path):
    pool = pool_factory(2, missing={"noobai"})
    settings = settings_for(pool, tmp_path)
    batch = run(
        px.arun_batch(["x", "y"], ["animagine", "noobai"], seeds=[1], settings=settings,
                      progress=False)
    )  # fmt: skip
    assert [g.model for g in batch.generations] == ["animagine", "animagine"]
    assert [f.job.model for f in batch.failed] == ["noobai", "noobai"]
    assert all(isinstance(f.error, ModelUnavailableError) for f in batch.failed)
    assert all(m != "noobai" for s in pool for m in models_sent(s))  # never sent


def test_a_batch_on_a_pool_is_estimated_and_charged_by_gpu_time(pool_factory, tmp_path):
    pool = pool_factory(2, gen_seconds=0.05)
    settings = settings_for(pool, tmp_path, selfhosted_cost_per_hour=0.30)
    run(px.agenerate("warm-up: one image sets the time per image", settings=settings))
    per_image = px.session_ledger.seconds_per_selfhosted_image()
    batch = run(px.arun_batch(["a", "b", "c", "d"], seeds=[1], settings=settings, progress=False))
    assert batch.estimated_cost_usd == pytest.approx(4 * per_image * 0.30 / 3600, abs=1e-6)
    assert batch.estimated_cost_usd > 0
    expected = sum(0.30 * g.elapsed_s / 3600 for g in batch.generations)
    assert batch.cost_usd == pytest.approx(expected, rel=1e-2)
    assert batch.cost_usd > 0
    with pytest.raises(px.CostLimitError):
        run(px.arun_batch(["a"] * 40, seeds=[1], settings=settings, max_cost_usd=1e-7))


def test_cancelling_a_pool_batch_keeps_what_arrived_and_retry_resumes(pool_factory, tmp_path):
    pool = pool_factory(3, gen_seconds=0.05)
    settings = settings_for(pool, tmp_path)

    async def scenario():
        batch = await px.start_batch(
            [f"stop {n}" for n in range(30)], seeds=[1], settings=settings, progress=False
        )
        while len(batch.generations) < 5:
            await asyncio.sleep(0.01)
        batch.cancel()
        await batch
        arrived = list(batch.generations)
        cancelled = [f for f in batch.failed if f.reason == "cancelled"]
        await batch.aretry_failed(progress=False)
        return batch, arrived, cancelled

    batch, arrived, cancelled = run(scenario())
    assert len(arrived) >= 5 and len(cancelled) == 30 - len(arrived)
    assert batch.ok and all(g in batch.generations for g in arrived)


def test_a_server_that_says_not_downloaded_hands_the_job_to_another(pool_factory, tmp_path):
    pool = pool_factory(2, gen_seconds=0.02)
    pool[0].set_fault("/generate", "status_503")  # its /models said downloaded; it was wrong
    settings = settings_for(pool, tmp_path)
    batch = run(px.arun_batch([f"m{n}" for n in range(6)], seeds=[1], settings=settings,
                              progress=False))  # fmt: skip
    assert batch.ok and len(batch.generations) == 6
    assert len(generated(pool[0])) == 1  # asked once, then left alone for that model
    assert batch.per_server == {pool.urls[0]: 0, pool.urls[1]: 6}
