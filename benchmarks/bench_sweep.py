"""Sweep contact sheets: the time a 100-image sheet takes beyond its images, and its weight.

A 10 × 10 sweep (Prompt S/R × seed, 1024² images) against a simulator that draws in
no time, in its own process, through ``px.arun_batch`` with archiving on. Judged:

1. ``batch.grid()`` (drawn, archived as PNG under ``sheets/``) plus the bytes a
   notebook shows of it (``sheet.shown()``): median of 3 runs, target < 1 s. The
   batch itself, the images' own time, is the baseline beside it.
2. A saved notebook that runs the sweep and shows ``batch.grid()`` grows by < 2 MB
   (nbclient, measured as ``bench_notebook_weight`` does); baseline: the same
   notebook showing the batch's thumbnail grid instead.

An information row (full runs only) gives what a notebook keeps of the same sheet
when the images are the simulator's "photo" texture (about as heavy as real SDXL
PNGs; 512² here, to keep the simulator's drawing short).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from ._harness import Result, bench_settings, close_shared_client, median, sim_process
from .bench_notebook_weight import _run_notebook

TARGET_S = 1.0
TARGET_MB = 2.0
MB = 1_000_000
WORDS = ["red", "blue", "green", "gold", "grey", "pink", "teal", "black", "white", "orange"]

SETUP = """\
import os
os.environ["SELFHOSTED_API_URL"] = {url!r}
os.environ["PIXERY_ARCHIVE_DIR"] = {archive!r}
import pixery_widgets as px
colours = px.prompt_sr("a red car at night", "red", {words!r})
batch = px.run_batch(colours[0], "animagine", vary={{"prompt": colours, "seed": list(range(10))}})
assert batch.ok and len(batch) == 100, batch.summary()
"""


async def _sweep(settings: Any, size: int) -> tuple[float, float, int]:
    """(seconds for the batch, seconds for its sheet and what a notebook shows, bytes shown)."""
    from pixery_widgets import arun_batch, prompt_sr

    colours = prompt_sr("a red car at night", "red", WORDS[1:])
    start = time.perf_counter()
    batch = await arun_batch(
        colours[0],
        "animagine",
        vary={"prompt": colours, "seed": list(range(10))},
        width=size,
        height=size,
        settings=settings,
        progress=False,
    )
    made = time.perf_counter()
    if not batch.ok or len(batch) != 100:
        raise RuntimeError(f"the sweep did not complete: {batch.summary()}")
    sheet = batch.grid()
    _mime, shown = sheet.shown()
    done = time.perf_counter()
    if not sheet.paths:
        raise RuntimeError(f"the sheet was not archived: {sheet.archive_error}")
    return made - start, done - made, len(shown)


def _timed(runs: int, texture: str = "flat", size: int = 1024) -> list[tuple[float, float, int]]:
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-sweep-", ignore_cleanup_errors=True
        ) as tmp,
        sim_process(gen_seconds=0, switch_seconds=0, texture=texture) as sim,
    ):
        settings = bench_settings(sim.url, tmp)

        async def main() -> list[tuple[float, float, int]]:
            out = [await _sweep(settings, size) for _ in range(runs)]
            await close_shared_client()
            return out

        return asyncio.run(main())


def _weights(quick: bool) -> tuple[float, float | None, dict[str, Any]]:
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-sweep-nb-", ignore_cleanup_errors=True
        ) as tmp,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        folder = Path(tmp)
        setup = SETUP.format(url=sim.url, archive=str(folder / "archive"), words=WORDS[1:])
        s0, s1, s_widgets = _run_notebook(folder, "sheet", [setup, "batch.grid()"])
        base = None
        data: dict[str, Any] = {"sheet_bytes": [s0, s1], "widget_state_bytes": s_widgets}
        if not quick:
            b0, b1, _ = _run_notebook(folder, "grid", [setup, "batch"])
            base = (b1 - b0) / MB
            data["batch_grid_bytes"] = [b0, b1]
    return (s1 - s0) / MB, base, data


def run(quick: bool = False) -> list[Result]:
    runs = 1 if quick else 3
    timed = _timed(runs)
    batch_s, sheet_s = median([t[0] for t in timed]), median([t[1] for t in timed])
    growth, base, data = _weights(quick)
    rows = [
        Result.bound(
            "contact sheet of a 100-image sweep, beyond the images' own time",
            sheet_s,
            "s",
            below=TARGET_S,
            baseline=batch_s,
            note=(
                f"batch.grid() (drawn from the batch's thumbnails, archived as PNG) plus the bytes "
                f"a notebook shows; median of {runs}. Baseline: the 10 × 10 sweep itself "
                "(1024² images, zero drawing time, archiving on)."
            ),
            data={"batch_s": [t[0] for t in timed], "sheet_s": [t[1] for t in timed]},
        ),
        Result.bound(
            "saved notebook growth, 100-image sweep sheet shown",
            growth,
            "MB",
            below=TARGET_MB,
            baseline=base,
            note=(
                "Growth of the saved file after the sweep + showing batch.grid() (progress bar "
                "included); baseline: the same sweep, then showing the batch's thumbnail grid."
            ),
            data=data,
        ),
    ]
    if not quick:
        photo = _timed(1, texture="photo", size=512)[0]
        rows.append(
            Result.info(
                "the same sheet of photo-textured images, as a notebook keeps it",
                photo[2] / MB,
                None,
                "MB",
                note=(
                    f"512² 'photo' texture; the sheet took {photo[1]:.2f} s. A PNG over 1 MB "
                    "is shown as a JPEG instead."
                ),
            )
        )
    return rows
