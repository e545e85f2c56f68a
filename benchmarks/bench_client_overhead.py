"""Client overhead per image: ``px.agenerate`` (archiving on) against a bare httpx loop.

The simulator draws nothing (``gen_seconds=0``, and the same prompt and seed
every time, so it answers from its cache): what is left is the client's own
cost per 1024×1024 image. Baseline: an httpx loop that only posts and
base64-decodes. Target: agenerate's throughput ≥ 0.8 × the baseline's.

A second row, for information, is agenerate with ``archive=False``: the
difference between the two rows is what archiving costs an interactive call.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from typing import Any

import httpx

from ._harness import Result, bench_settings, close_shared_client, median, paired, sim_process

TARGET = 0.8
PROMPT = "a lighthouse at dusk, benchmark"
SEED = 1234
SIZE = 1024


def _body() -> dict[str, Any]:
    """What agenerate sends for PROMPT on animagine (the same drawing, from the sim's cache)."""
    return {"prompt": PROMPT, "model": "animagine", "width": SIZE, "height": SIZE, "seed": SEED}


async def _bare(client: httpx.AsyncClient, url: str, n: int) -> None:
    for _ in range(n):
        response = await client.post(f"{url}/generate", json=_body(), timeout=60)
        response.raise_for_status()
        base64.b64decode(response.json()["image"])


async def _agenerate(settings: Any, n: int, *, archive: bool) -> None:
    from pixery_widgets import agenerate

    for _ in range(n):
        kwargs: dict[str, Any] = {} if archive else {"archive": False}
        generation = await agenerate(
            PROMPT, "animagine", width=SIZE, height=SIZE, seed=SEED, settings=settings, **kwargs
        )
        assert generation.png_bytes


def _archive_supported() -> bool:
    import inspect

    from pixery_widgets import agenerate

    return "archive" in inspect.signature(agenerate).parameters


def run(quick: bool = False) -> list[Result]:
    images = 40 if quick else 100
    repeats = 3 if quick else 7
    archiving = _archive_supported()
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-archive-", ignore_cleanup_errors=True
        ) as archive_dir,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        settings = bench_settings(sim.url, archive_dir)

        async def main() -> tuple[list[float], list[float], list[float], list[float]]:
            async with httpx.AsyncClient(trust_env=False) as client:
                with_archive, bare = await paired(
                    lambda: _agenerate(settings, images, archive=True),
                    lambda: _bare(client, sim.url, images),
                    repeats,
                )
                if archiving:
                    no_archive, bare2 = await paired(
                        lambda: _agenerate(settings, images, archive=False),
                        lambda: _bare(client, sim.url, images),
                        repeats,
                    )
                else:
                    no_archive, bare2 = [], []
            await close_shared_client()
            return with_archive, bare, no_archive, bare2

        with_archive, bare, no_archive, bare2 = asyncio.run(main())

    def tput(seconds: list[float]) -> float:
        return images / median(seconds)

    def extra_ms(ours: list[float], base: list[float]) -> float:
        return (median(ours) - median(base)) / images * 1000

    rows = [
        Result.ratio(
            "client throughput, agenerate + archive (1024² images)",
            tput(with_archive),
            tput(bare),
            "img/s",
            at_least=TARGET,
            note=(
                f"{images} images per block, median of {repeats} blocks, alternated with the bare "
                "httpx loop (post + base64-decode). "
                + (
                    "Archiving was on (agenerate's default)."
                    if archiving
                    else "agenerate has no archive parameter yet: nothing was archived."
                )
                + f" agenerate's extra time per image: {extra_ms(with_archive, bare):.1f} ms."
                + " The simulator's PNGs are ~55 KB (a real SDXL PNG is ~1.5 MB)."
            ),
            data={"images": images, "measured_s": with_archive, "baseline_s": bare},
        )
    ]
    if archiving:
        rows.append(
            Result.info(
                "client throughput, agenerate archive=False",
                tput(no_archive),
                tput(bare2),
                "img/s",
                note=(
                    "The same without archiving: the gap to the row above is the archive's cost. "
                    f"Extra time per image: {extra_ms(no_archive, bare2):.2f} ms."
                ),
                data={"images": images, "measured_s": no_archive, "baseline_s": bare2},
            )
        )
    return rows
