"""Memory: resident memory growth over 200 generations in one process.

A fresh child process makes 5 warm-up images, notes its resident memory
(VmRSS), makes 200 more with ``px.agenerate`` (archiving on), and notes it
again. Baseline: the same in a child that only posts and base64-decodes with
httpx. Target: growth < 100 MB (10^6 bytes). The child also counts the ``Generation``
objects still alive at the end (a leak of images shows there whatever the
images weigh: the simulator's PNGs are ~55 KB, a real SDXL one ~1.5 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import subprocess
import sys
import tempfile
from typing import Any

from ._harness import ROOT, Result, bench_settings, peak_rss_mb, rss_mb, sim_process

TARGET_MB = 100.0
GENERATIONS = 200
WARMUP = 5
DISTINCT = 20  # seeds cycle through these, so the simulator draws each once


async def _px_loop(url: str, archive_dir: str, n: int, offset: int) -> None:
    from pixery_widgets import agenerate

    settings = bench_settings(url, archive_dir)
    for i in range(n):
        generation = await agenerate(
            f"memory {(offset + i) % DISTINCT}",
            "animagine",
            seed=(offset + i) % DISTINCT,
            settings=settings,
        )
        del generation


async def _bare_loop(url: str, n: int, offset: int, client: Any) -> None:
    for i in range(n):
        body = {"prompt": f"memory {(offset + i) % DISTINCT}", "seed": (offset + i) % DISTINCT}
        response = await client.post(f"{url}/generate", json=body, timeout=60)
        response.raise_for_status()
        raw = base64.b64decode(response.json()["image"])
        del raw, response


def _child(argv: list[str]) -> int:
    """Runs in the child process: prints one JSON line with the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["px", "bare"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--archive", required=True)
    parser.add_argument("--n", type=int, default=GENERATIONS)
    args = parser.parse_args(argv)

    async def main() -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(trust_env=False) as client:

            async def batch(n: int, offset: int) -> None:
                if args.mode == "px":
                    await _px_loop(args.url, args.archive, n, offset)
                else:
                    await _bare_loop(args.url, n, offset, client)

            await batch(WARMUP, 0)
            gc.collect()
            before = rss_mb()
            await batch(args.n, WARMUP)
            gc.collect()
            after = rss_mb()
        from pixery_widgets import Generation

        alive = sum(isinstance(o, Generation) for o in gc.get_objects())
        return {"before_mb": before, "after_mb": after, "peak_mb": peak_rss_mb(), "alive": alive}

    print(json.dumps(asyncio.run(main())), flush=True)
    return 0


def _measure(mode: str, url: str, archive_dir: str, n: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_memory",
        mode,
        "--url",
        url,
        "--archive",
        archive_dir,
        "--n",
        str(n),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} child failed: {done.stderr.strip()[-1500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(quick: bool = False) -> list[Result]:
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-mem-", ignore_cleanup_errors=True
        ) as archive_dir,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        ours = _measure("px", sim.url, archive_dir, GENERATIONS)
        base = _measure("bare", sim.url, archive_dir, GENERATIONS)
    growth = ours["after_mb"] - ours["before_mb"]
    base_growth = base["after_mb"] - base["before_mb"]
    return [
        Result.bound(
            f"RSS growth over {GENERATIONS} generations",
            growth,
            "MB",
            below=TARGET_MB,
            baseline=base_growth,
            note=(
                f"VmRSS after {WARMUP} warm-up images → after {GENERATIONS} more, in a fresh process "
                f"(agenerate, archiving on; baseline: bare httpx post + decode). Peak RSS "
                f"{ours['peak_mb']:.0f} MB (baseline {base['peak_mb']:.0f} MB). Generation objects "
                f"alive at the end: {ours['alive']}."
            ),
            data={"px": ours, "bare": base},
        )
    ]


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
