"""Client overhead per image: ``px.agenerate`` (archiving on) against a bare httpx loop.

The simulator draws nothing (``gen_seconds=0``, and the same prompt and seed
every time, so it answers from its cache): what is left is the client's own
cost per 1024×1024 image. Baseline: an httpx loop that only posts and
base64-decodes. Target: agenerate's throughput ≥ 0.8 × the baseline's.

Two rows for information: agenerate with ``archive=False`` (the difference to
the first row is what archiving costs), and the floor: the bare loop plus the
least any archiving client must do before it returns, i.e. write the same PNG
under its final name (temporary file, then rename) and commit one index row,
off the event loop. ``agenerate / floor`` is the client's own overhead; ``floor /
bare`` is the disk's price, which no client code can remove.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx

from ._harness import Result, bench_settings, close_shared_client, interleaved, median, sim_process

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


class _FloorArchive:
    """The least an archive can do and keep its promise: the file whole under its final
    name and its row committed before the call returns. No metadata, no fsync."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names = itertools.count()
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(folder / "floor.sqlite", check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS images (name TEXT PRIMARY KEY)")

    def keep(self, body: bytes) -> None:
        png = base64.b64decode(json.loads(body)["image"])
        name = f"{next(self.names)}.png"
        temp = self.folder / f".{name}.tmp"
        temp.write_bytes(png)
        os.replace(temp, self.folder / name)
        with self.lock, self.conn:
            self.conn.execute("INSERT INTO images VALUES (?)", (name,))


async def _floor(client: httpx.AsyncClient, url: str, n: int, archive: _FloorArchive) -> None:
    for _ in range(n):
        response = await client.post(f"{url}/generate", json=_body(), timeout=60)
        response.raise_for_status()
        await asyncio.to_thread(archive.keep, response.content)


async def _agenerate(settings: Any, n: int, *, archive: bool) -> None:
    from pixery_widgets import agenerate

    for _ in range(n):
        kwargs: dict[str, Any] = {} if archive else {"archive": False}
        generation = await agenerate(
            PROMPT, "animagine", width=SIZE, height=SIZE, seed=SEED, settings=settings, **kwargs
        )
        assert generation.png_bytes


def run(quick: bool = False) -> list[Result]:
    images = 40 if quick else 100
    repeats = 3 if quick else 9
    with (
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-archive-", ignore_cleanup_errors=True
        ) as archive_dir,
        tempfile.TemporaryDirectory(
            prefix="pixery-bench-floor-", ignore_cleanup_errors=True
        ) as floor_dir,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        settings = bench_settings(sim.url, archive_dir)
        floor_archive = _FloorArchive(Path(floor_dir))

        async def main() -> list[list[float]]:
            async with httpx.AsyncClient(trust_env=False) as client:
                timed = await interleaved(
                    [
                        lambda: _agenerate(settings, images, archive=True),
                        lambda: _bare(client, sim.url, images),
                        lambda: _agenerate(settings, images, archive=False),
                        lambda: _floor(client, sim.url, images, floor_archive),
                    ],
                    repeats,
                )
            await close_shared_client()
            return timed

        with_archive, bare, no_archive, floor = asyncio.run(main())
        floor_archive.conn.close()

    def tput(seconds: list[float]) -> float:
        return images / median(seconds)

    def extra_ms(ours: list[float], base: list[float]) -> float:
        return (median(ours) - median(base)) / images * 1000

    blocks = (
        f"{images} images per block, median of {repeats} blocks of each row's variants, "
        "interleaved with the bare httpx loop (post + base64-decode)."
    )
    return [
        Result.ratio(
            "client throughput, agenerate + archive (1024² images)",
            tput(with_archive),
            tput(bare),
            "img/s",
            at_least=TARGET,
            note=(
                f"{blocks} Archiving on (agenerate's default): the PNG with its parameters and "
                "the index row are in place before agenerate returns. Extra time per image: "
                f"{extra_ms(with_archive, bare):.2f} ms. Against the floor row below: "
                f"{tput(with_archive) / tput(floor):.2f}×. The simulator's PNGs are ~55 KB "
                "(a real SDXL PNG is ~1.5 MB)."
            ),
            data={"images": images, "measured_s": with_archive, "baseline_s": bare},
        ),
        Result.info(
            "client throughput, agenerate archive=False",
            tput(no_archive),
            tput(bare),
            "img/s",
            note=(
                "The same without archiving. Extra time per image: "
                f"{extra_ms(no_archive, bare):.2f} ms."
            ),
            data={"images": images, "measured_s": no_archive, "baseline_s": bare},
        ),
        Result.info(
            "floor: bare loop + file and index row",
            tput(floor),
            tput(bare),
            "img/s",
            note=(
                "The bare loop plus the least an archive can do and keep its promise, in a "
                "worker thread: the PNG written to a temporary file and renamed into place, one "
                "SQLite row committed (no metadata, no fsync). Its ratio is the best any "
                "archiving client can reach on this machine; extra time per image: "
                f"{extra_ms(floor, bare):.2f} ms."
            ),
            data={"images": images, "measured_s": floor, "baseline_s": bare},
        ),
    ]
