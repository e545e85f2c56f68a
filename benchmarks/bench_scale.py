"""Scale: a 1,000-job batch against a simulator that draws in no time.

1. Planning: ``plan_batch`` for 1,000 prompts (every job's request checked and
   priced, the archive opened, nothing sent), median of 3, target < 1 s. Baseline
   beside it: the time the same batch takes to run.
2. Resident memory: a real kernel (nbclient) runs a 5-image warm-up batch, notes its
   VmRSS, runs the 1,000-image batch with ``px.run_batch`` (archiving and progress bar
   on), collects garbage and notes VmRSS again. Target: growth < 200 MB (10^6 bytes).
   Baseline: the PNG bytes the batch holds, which any batch that keeps its images in
   memory must hold.
3. Notebook weight: the same notebook then displays the batch; the saved file's
   growth over the whole run, widget state included, target < 2 MB. Baseline: the
   batch's thumbnails as base64, what a grid embedding every one would weigh.

The images are the simulator's flat 1024² drawings (~50 KB PNGs), each one drawn
once (1,000 prompts), so a run takes about a minute; ``--quick`` makes 40.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ._harness import Result, bench_settings, close_shared_client, median, sim_process
from .bench_notebook_weight import _run_notebook

JOBS = 1000
QUICK_JOBS = 40
PLAN_TARGET_S = 1.0
RSS_TARGET_MB = 200.0
WEIGHT_TARGET_MB = 2.0
MB = 1_000_000
MARK = "SCALE "

SETUP = """\
import gc, json, os, time
os.environ["SELFHOSTED_API_URL"] = {url!r}
os.environ["PIXERY_ARCHIVE_DIR"] = {archive!r}
import pixery_widgets as px

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6

warm = px.run_batch([f"warm-up {{i}}" for i in range(5)], "animagine", seeds=[7])
assert warm.ok, warm.summary()
"""

RUN = """\
gc.collect()
before = rss_mb()
started = time.perf_counter()
batch = px.run_batch([f"scale {{i}}" for i in range({n})], "animagine", seeds=[7])
took = time.perf_counter() - started
assert batch.ok and len(batch) == {n}, batch.summary()
gc.collect()
after = rss_mb()
print({mark!r} + json.dumps({{
    "before_mb": before, "after_mb": after, "batch_s": took,
    "png_bytes": sum(len(g.png_bytes) for g in batch.generations),
    "thumb_bytes": sum(len(t) for t in batch.thumbnails.values()),
    "grid_cells": batch._grid_length(),
}}))
"""


def _plan_seconds(jobs: int, runs: int) -> list[float]:
    from pixery_widgets.session.batch_plan import plan_batch

    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-scale-plan-", ignore_cleanup_errors=True
        ) as tmp,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        settings = bench_settings(sim.url, tmp)
        prompts = [f"scale {i}" for i in range(jobs)]

        async def main() -> list[float]:
            out = []
            for _ in range(runs):
                start = time.perf_counter()
                batch = await plan_batch(prompts, "animagine", seeds=[7], settings=settings)
                out.append(time.perf_counter() - start)
                assert len(batch.jobs) == jobs
            await close_shared_client()
            return out

        return asyncio.run(main())


def _printed(path: Path) -> dict[str, Any]:
    """The figures the run cell printed, read back from the saved notebook."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in str(output.get("text", "")).splitlines():
                if line.startswith(MARK):
                    return dict(json.loads(line[len(MARK) :]))
    raise RuntimeError(f"the notebook printed no {MARK.strip()} line")


def _kernel_run(jobs: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-scale-", ignore_cleanup_errors=True
        ) as tmp,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        folder = Path(tmp)
        setup = SETUP.format(url=sim.url, archive=str(folder / "archive"))
        run = RUN.format(n=jobs, mark=MARK)
        size0, size1, widgets = _run_notebook(
            folder, "scale", [setup, run, "batch"], timeout=max(180, jobs)
        )
        figures = _printed(folder / "scale.ipynb")
    return {**figures, "notebook_bytes": [size0, size1], "widget_state_bytes": widgets}


def run(quick: bool = False) -> list[Result]:
    jobs = QUICK_JOBS if quick else JOBS
    plan = _plan_seconds(jobs, 1 if quick else 3)
    kernel = _kernel_run(jobs)
    growth = kernel["after_mb"] - kernel["before_mb"]
    weight = (kernel["notebook_bytes"][1] - kernel["notebook_bytes"][0]) / MB
    thumbs_b64 = kernel["thumb_bytes"] * 4 / 3 / MB
    return [
        Result.bound(
            f"{jobs}-job batch planned (checked, priced, nothing sent)",
            median(plan),
            "s",
            below=PLAN_TARGET_S,
            baseline=kernel["batch_s"],
            note=(
                f"plan_batch for {jobs} prompts × 1 seed against the simulator, median of "
                f"{len(plan)}. Baseline: the same batch run in a kernel (1024² flat images, zero "
                "drawing time, archiving and progress bar on)."
            ),
            data={"plan_s": plan},
        ),
        Result.bound(
            f"kernel RSS growth over a {jobs}-image batch",
            growth,
            "MB",
            below=RSS_TARGET_MB,
            baseline=kernel["png_bytes"] / MB,
            note=(
                "VmRSS of a real kernel after a 5-image warm-up batch → after the batch and a "
                "gc.collect(). Baseline: the PNG bytes the batch holds in memory (its "
                f"thumbnails add {kernel['thumb_bytes'] / MB:.1f} MB)."
            ),
            data=kernel,
        ),
        Result.bound(
            f"saved notebook growth, {jobs}-image batch shown",
            weight,
            "MB",
            below=WEIGHT_TARGET_MB,
            baseline=thumbs_b64,
            note=(
                "Growth of the saved file after the warm-up, the batch (progress bar included) "
                f"and displaying the batch, whose grid shows the first {kernel['grid_cells']} "
                f"images (GRID_THUMB_BYTES of thumbnails); widget state "
                f"{kernel['widget_state_bytes'] / MB:.2f} MB. Baseline: all of the batch's "
                "thumbnails as base64, what a grid showing every one would embed."
            ),
        ),
    ]
