"""Several servers: does a batch keep a pool busy, switch little, and survive a death?

Every simulator runs in a process of its own (``sim_process``), so the servers'
work is off this benchmark's event loop and GIL, as rented GPUs are. Each draws
for ``GEN_SECONDS`` per image; the pictures are rendered once in a warm-up (at
no drawing time), so the simulators answer from their caches and an image costs
``GEN_SECONDS`` plus HTTP. Batches go through ``px.arun_batch`` with archiving
on, each timed from the call to its return; the median of the runs is judged.

- spread: 40 jobs on 4 servers. Ideal: 40 × 0.25 s / 4. Target ≤ 1.1 ×.
- switches: 36 jobs over 3 models on 3 servers, each starting with a different
  model loaded, 1 s per checkpoint switch. Targets: at most 3 switches (counted
  from the servers' own request logs) and ≤ 1.15 × the ideal, 36 × 0.25 s / 3.
- a death: 40 jobs on 4 servers; when 20 images have arrived one server's
  process is killed (SIGKILL: its connections are reset, as when an instance
  goes away). Every image must still arrive; the time from the kill to the end is
  judged against the ideal for what was left, (40 − arrived) × 0.25 s / 3.
  Target ≤ 1.2 ×.

Run alone: ``python -m benchmarks.bench_pool``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
from collections.abc import Sequence
from typing import Any

import httpx

from ._harness import Result, bench_settings, close_shared_client, median, sim_process

GEN_SECONDS = 0.25
#: Small pictures: less base64 and JSON per answer on both sides, so scheduling is what shows.
SIZE = 512
SWITCH_SECONDS = 1.0
MODELS = ("animagine", "pony", "noobai")
TARGETS = {"spread": 1.1, "switches": 1.15, "death": 1.2}
MAX_SWITCHES = 3


def _jobs(n: int, models: Sequence[str]) -> tuple[list[str], list[int]]:
    """Prompts × seeds giving ``n`` jobs per model: each prompt with seeds 1 and 2."""
    per_model = n // len(models)
    return [f"pool benchmark {k}" for k in range(per_model // 2)], [1, 2]


async def _warm(
    client: httpx.AsyncClient, url: str, model: str, prompts: list[str], seeds: list[int]
) -> None:
    """Render every picture once, at no drawing time, then restore the server's knobs."""
    await client.post(f"{url}/_sim/config", json={"gen_seconds": 0, "switch_seconds": 0})
    for prompt in prompts:
        for seed in seeds:
            body = {"prompt": prompt, "model": model, "seed": seed, "width": SIZE, "height": SIZE}
            (await client.post(f"{url}/generate", json=body, timeout=60)).raise_for_status()
    await client.post(
        f"{url}/_sim/config",
        json={"gen_seconds": GEN_SECONDS, "switch_seconds": SWITCH_SECONDS, "current_model": model},
    )


async def _models_sent(client: httpx.AsyncClient, url: str, since: int) -> list[str]:
    log = (await client.get(f"{url}/_sim/requests")).json()
    return [r["json"]["model"] for r in log[since:] if r["path"] == "/generate"]


async def _log_length(client: httpx.AsyncClient, url: str) -> int:
    return len((await client.get(f"{url}/_sim/requests")).json())


def _count_switches(start: str, sent: list[str]) -> int:
    return sum(a != b for a, b in itertools.pairwise([start, *sent]))


async def _one_batch(
    urls: list[str],
    models: Sequence[str],
    prompts: list[str],
    seeds: list[int],
    archive_dir: str,
    *,
    progress: Any = False,
) -> tuple[float, Any]:
    import pixery_widgets as px

    settings = bench_settings(",".join(urls), archive_dir)
    loop = asyncio.get_running_loop()
    start = loop.time()
    batch = await px.arun_batch(
        prompts,
        list(models),
        seeds=seeds,
        width=SIZE,
        height=SIZE,
        settings=settings,
        progress=progress,
    )
    return loop.time() - start, batch


async def _bare(
    client: httpx.AsyncClient, urls: list[str], prompts: list[str], seeds: list[int]
) -> float:
    """The floor: one bare httpx loop per server taking the same requests from one list,
    nothing done with the answers."""
    todo = [(p, s) for p in prompts for s in seeds]

    async def loop(url: str) -> None:
        while todo:
            prompt, seed = todo.pop(0)
            body = {
                "prompt": prompt,
                "model": "animagine",
                "seed": seed,
                "width": SIZE,
                "height": SIZE,
            }
            (await client.post(f"{url}/generate", json=body, timeout=60)).raise_for_status()

    start = asyncio.get_running_loop().time()
    await asyncio.gather(*(loop(url) for url in urls))
    return asyncio.get_running_loop().time() - start


async def _warm_client(urls: list[str], models: Sequence[str], archive_dir: str) -> None:
    """One small batch first: the archive opened, a connection to every server, statuses known."""
    prompts = [f"pool warm-up {k}" for k in range(len(urls))]
    await _one_batch(urls, models, prompts, [0], archive_dir)


def _servers(n: int, starts: Sequence[str], stack: contextlib.ExitStack) -> list[Any]:
    return [
        stack.enter_context(
            sim_process(
                gen_seconds=GEN_SECONDS,
                switch_seconds=SWITCH_SECONDS,
                start_loaded=starts[i % len(starts)],
            )
        )
        for i in range(n)
    ]


def measure_spread(jobs: int, runs: int, servers: int = 4) -> dict[str, Any]:
    prompts, seeds = _jobs(jobs, ["animagine"])
    with contextlib.ExitStack() as stack:
        archive_dir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pixery-bench-pool-", ignore_cleanup_errors=True)
        )
        procs = _servers(servers, ["animagine"], stack)
        urls = [p.url for p in procs]

        async def main() -> tuple[list[float], list[float]]:
            walls: list[float] = []
            floors: list[float] = []
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                await asyncio.gather(*(_warm(client, u, "animagine", prompts, seeds) for u in urls))
                await _warm_client(urls, ["animagine"], archive_dir)
                for i in range(runs):  # alternated, so a noisy neighbour hits both alike
                    for which in ("batch", "bare") if i % 2 == 0 else ("bare", "batch"):
                        if which == "bare":
                            floors.append(await _bare(client, urls, prompts, seeds))
                            continue
                        wall, batch = await _one_batch(
                            urls, ["animagine"], prompts, seeds, archive_dir
                        )
                        if not batch.ok or len(batch.generations) != jobs:
                            raise RuntimeError(f"not every image arrived: {batch.summary()}")
                        walls.append(wall)
            await close_shared_client()
            return walls, floors

        walls, floors = asyncio.run(main())
    ideal = jobs * GEN_SECONDS / servers
    return {
        "floors_s": floors,
        "floor_s": median(floors),
        "jobs": jobs,
        "servers": servers,
        "walls_s": walls,
        "wall_s": median(walls),
        "ideal_s": ideal,
    }


def measure_switches(jobs: int, runs: int) -> dict[str, Any]:
    prompts, seeds = _jobs(jobs, MODELS)
    with contextlib.ExitStack() as stack:
        archive_dir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pixery-bench-pool-", ignore_cleanup_errors=True)
        )
        procs = _servers(len(MODELS), MODELS, stack)
        urls = [p.url for p in procs]

        async def main() -> tuple[list[float], list[int]]:
            walls, switches = [], []
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                await asyncio.gather(
                    *(_warm(client, u, m, [], []) for u, m in zip(urls, MODELS, strict=True))
                )
                await _warm_client(urls, MODELS, archive_dir)
                for _ in range(runs):
                    await asyncio.gather(
                        *(
                            _warm(client, u, m, prompts, seeds)
                            for u, m in zip(urls, MODELS, strict=True)
                        )
                    )
                    marks = [await _log_length(client, u) for u in urls]
                    wall, batch = await _one_batch(urls, MODELS, prompts, seeds, archive_dir)
                    if not batch.ok or len(batch.generations) != jobs:
                        raise RuntimeError(
                            f"the batch did not deliver every image: {batch.summary()}"
                        )
                    sent = [
                        await _models_sent(client, u, m) for u, m in zip(urls, marks, strict=True)
                    ]
                    walls.append(wall)
                    switches.append(
                        sum(_count_switches(m, s) for m, s in zip(MODELS, sent, strict=True))
                    )
            await close_shared_client()
            return walls, switches

        walls, switches = asyncio.run(main())
    ideal = jobs * GEN_SECONDS / len(MODELS)
    return {
        "jobs": jobs,
        "walls_s": walls,
        "wall_s": median(walls),
        "ideal_s": ideal,
        "switches": switches,
    }


def _death_run(jobs: int, servers: int) -> dict[str, Any]:
    prompts, seeds = _jobs(jobs, ["animagine"])
    with contextlib.ExitStack() as stack:
        archive_dir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pixery-bench-pool-", ignore_cleanup_errors=True)
        )
        procs = _servers(servers, ["animagine"], stack)
        urls = [p.url for p in procs]

        async def main() -> dict[str, Any]:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                await asyncio.gather(*(_warm(client, u, "animagine", prompts, seeds) for u in urls))
            await _warm_client(urls, ["animagine"], archive_dir)
            loop = asyncio.get_running_loop()
            killed: dict[str, float] = {}

            def kill_half_way(snapshot: Any) -> None:
                if snapshot.done >= jobs // 2 and not killed:
                    procs[1].process.kill()
                    killed.update(at=loop.time(), arrived=snapshot.done)

            start = loop.time()
            wall, batch = await _one_batch(
                urls, ["animagine"], prompts, seeds, archive_dir, progress=kill_half_way
            )
            await close_shared_client()
            if not batch.ok or len(batch.generations) != jobs:
                raise RuntimeError(f"images were lost when a server died: {batch.summary()}")
            after = start + wall - killed["at"]
            left = jobs - killed["arrived"]
            return {
                "after_kill_s": after,
                "left": left,
                "ideal_s": left * GEN_SECONDS / (servers - 1),
                "wall_s": wall,
                "per_server": list(batch.per_server.values()),
            }

        return asyncio.run(main())


def measure_death(jobs: int, runs: int, servers: int = 4) -> dict[str, Any]:
    results = [_death_run(jobs, servers) for _ in range(runs)]
    ratios = [r["after_kill_s"] / r["ideal_s"] for r in results]
    best = sorted(range(runs), key=lambda i: ratios[i])[runs // 2]  # the median run
    return {"jobs": jobs, "runs": results, "median": results[best], "ratios": ratios}


def run(quick: bool = False) -> list[Result]:
    runs = 1 if quick else 3
    spread = measure_spread(20 if quick else 40, runs)
    switches = measure_switches(18 if quick else 36, runs)
    death = measure_death(20 if quick else 40, runs)
    median_switches = int(median(switches["switches"]))
    d = death["median"]
    return [
        Result.ratio(
            f"pool: {spread['jobs']} jobs × 0.25 s on 4 servers",
            spread["wall_s"],
            spread["ideal_s"],
            "s",
            at_most=TARGETS["spread"],
            note=f"median of {runs} run(s), archiving on; baseline: jobs × 0.25 s / 4 servers.",
            data=spread,
        ),
        Result.info(
            "pool: the same batch vs 4 bare httpx loops",
            spread["wall_s"],
            spread["floor_s"],
            "s",
            note="one bare loop per server over the same requests: the floor any client could "
            "reach against these servers on this machine now (it holds the machine's noise).",
        ),
        Result.ratio(
            f"pool: {switches['jobs']} jobs, 3 models on 3 servers, 1 s per switch",
            switches["wall_s"],
            switches["ideal_s"],
            "s",
            at_most=TARGETS["switches"],
            note="each server starts with a different model loaded; baseline: jobs × 0.25 s / 3.",
            data=switches,
        ),
        Result.bound(
            "pool: checkpoint switches in that batch",
            median_switches,
            "switches",
            below=MAX_SWITCHES + 1,
            note="counted from the servers' own request logs (median of the runs).",
        ),
        Result.ratio(
            f"pool: one of 4 servers killed half-way, {death['jobs']} jobs",
            d["after_kill_s"],
            d["ideal_s"],
            "s",
            at_most=TARGETS["death"],
            note=(
                f"all {death['jobs']} images delivered in every run; time from the kill to the end "
                f"vs (jobs left) × 0.25 s / 3 servers; per server {d['per_server']}."
            ),
            data=death,
        ),
    ]


if __name__ == "__main__":
    from .__main__ import table

    print(table(run()))
