"""Batch pipelining: does the self-hosted server ever sit idle while work is left?

40 jobs on a simulator that draws for 0.25 s per image (in its own process),
through ``px.arun_batch`` with its defaults (one request in flight per server,
archiving on). Judged: wall time / (40 × 0.25 s), median of 3 runs, target
≤ 1.1. A wave scheduler or a slot held while the disk is written would show
here.

The simulator's own rendering (PNG encoding, ~50 ms for a 1024² image) is
server time that no client can hide, so the jobs use 20 distinct (prompt,
seed) pairs, each twice, drawn once in a warm-up: the simulator answers from
its cache and its time per image is ``gen_seconds`` plus its HTTP handling.
An information row shows a bare sequential httpx loop over the same 40
requests: the floor any client could reach against this server.

Run alone: ``python -m benchmarks.bench_batch`` prints one line and writes
``benchmarks/results/batch.json`` (so does ``python -m benchmarks``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
from typing import Any

import httpx

from ._harness import ROOT, Result, bench_settings, close_shared_client, median, sim_process

GEN_SECONDS = 0.25
TARGET = 1.1
RESULTS = ROOT / "benchmarks" / "results" / "batch.json"


def _plan(jobs: int) -> tuple[list[str], list[int]]:
    """Prompts (each listed twice) × seeds giving ``jobs`` jobs over jobs/2 distinct drawings."""
    seeds = [1, 2, 3, 4, 5]
    distinct = [f"batch benchmark {n}" for n in range(jobs // (2 * len(seeds)))]
    return distinct * 2, seeds


async def _bare(client: httpx.AsyncClient, url: str, prompts: list[str], seeds: list[int]) -> None:
    """The floor: the same requests one after another, nothing done with the answers."""
    for prompt in prompts:
        for seed in seeds:
            response = await client.post(
                f"{url}/generate",
                json={"prompt": prompt, "model": "animagine", "seed": seed},
                timeout=60,
            )
            response.raise_for_status()


async def _batch(settings: Any, prompts: list[str], seeds: list[int]) -> int:
    from pixery_widgets import arun_batch

    batch = await arun_batch(prompts, "animagine", seeds=seeds, settings=settings, progress=False)
    if not batch.ok:
        raise RuntimeError(f"the batch had failures: {batch.failed[:3]}")
    return len(batch.generations)


def measure(jobs: int = 40, runs: int = 3) -> dict[str, Any]:
    prompts, seeds = _plan(jobs)
    ideal = jobs * GEN_SECONDS
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-batch-", ignore_cleanup_errors=True
        ) as archive_dir,
        sim_process(gen_seconds=GEN_SECONDS, switch_seconds=0) as sim,
    ):
        settings = bench_settings(sim.url, archive_dir)

        async def main() -> tuple[list[float], list[float]]:
            loop = asyncio.get_running_loop()
            walls: list[float] = []
            floors: list[float] = []
            async with httpx.AsyncClient(trust_env=False) as client:
                await _bare(client, sim.url, prompts[: len(prompts) // 2], seeds)  # warm the cache
                await _batch(settings, prompts[:1], seeds[:1])  # open the archive and the client
                for i in range(runs):
                    for which in ("batch", "bare") if i % 2 == 0 else ("bare", "batch"):
                        start = loop.time()
                        if which == "batch":
                            if await _batch(settings, prompts, seeds) != jobs:
                                raise RuntimeError("the batch made the wrong number of images")
                            walls.append(loop.time() - start)
                        else:
                            await _bare(client, sim.url, prompts, seeds)
                            floors.append(loop.time() - start)
            await close_shared_client()
            return walls, floors

        walls, floors = asyncio.run(main())
    wall, floor = median(walls), median(floors)
    return {
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "jobs": jobs,
        "gen_seconds": GEN_SECONDS,
        "ideal_s": ideal,
        "runs": runs,
        "wall_s": walls,
        "median_wall_s": round(wall, 3),
        "ratio": round(wall / ideal, 4),
        "target": TARGET,
        "passed": wall / ideal <= TARGET,
        "bare_loop_s": floors,
        "median_bare_loop_s": round(floor, 3),
        "ratio_to_bare_loop": round(wall / floor, 4),
    }


def _write(payload: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(RESULTS)


def line(p: dict[str, Any]) -> str:
    return (
        f"batch pipelining: {p['jobs']} jobs × {p['gen_seconds']} s: median wall "
        f"{p['median_wall_s']:.2f} s over {p['runs']} runs = {p['ratio']:.3f} × {p['ideal_s']:g} s "
        f"(target ≤ {p['target']}) {'pass' if p['passed'] else 'FAIL'}; bare sequential loop "
        f"{p['median_bare_loop_s']:.2f} s (batch / bare = {p['ratio_to_bare_loop']:.3f})"
    )


def run(quick: bool = False) -> list[Result]:
    payload = measure(jobs=20 if quick else 40, runs=1 if quick else 3)
    if not quick:  # batch.json holds the full measurement only
        _write(payload)
    note = (
        f"{payload['jobs']} jobs, one request in flight, archiving on, median of "
        f"{payload['runs']} run(s); the simulator answers from its cache (see the module "
        "docstring). Baseline: jobs × gen_seconds."
    )
    return [
        Result.ratio(
            "batch wall time vs jobs × 0.25 s",
            payload["median_wall_s"],
            payload["ideal_s"],
            "s",
            at_most=TARGET,
            note=note,
            data=payload,
        ),
        Result.info(
            "batch wall time vs a bare sequential httpx loop",
            payload["median_wall_s"],
            payload["median_bare_loop_s"],
            "s",
            note="The bare loop only posts; the gap is the batch's own cost per image.",
        ),
    ]


if __name__ == "__main__":
    result = measure()
    _write(result)
    print(line(result))
