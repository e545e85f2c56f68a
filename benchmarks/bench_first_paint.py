"""First paint: how long ``PixeryPanel()`` takes to return, whatever the server does.

Three servers: a healthy simulator, one that accepts connections and never
answers (``/health`` hangs), and a closed port. Baseline: a panel that checks
health before it draws (``acheck_selfhosted`` awaited, then the panel built),
as a naive implementation would. Target: under 50 ms in all three cases.

Runs inside an asyncio loop, like a Jupyter kernel, so the panel's background
check is really scheduled; the simulator runs in its own process. The
one-off import of ipywidgets/anywidget and the first widget ever built are
warmed up first and shown in a row of their own.

    .venv/bin/python -m benchmarks --only first_paint     # with the other benchmarks
    .venv/bin/python benchmarks/bench_first_paint.py      # table + results/first_paint.json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._harness import Result, bench_settings, median, sim_process
else:
    from ._harness import Result, bench_settings, median, sim_process

RESULTS = Path(__file__).parent / "results" / "first_paint.json"
TARGET_MS = 50.0


@contextlib.contextmanager
def _healthy() -> Iterator[str]:
    with sim_process(gen_seconds=0, switch_seconds=0) as sim:
        yield sim.url


@contextlib.contextmanager
def _hanging() -> Iterator[str]:
    with sim_process(faults={"/health": "hang"}) as sim:
        yield sim.url


@contextlib.contextmanager
def _closed() -> Iterator[str]:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


SERVERS = (("healthy", _healthy), ("accepts, never answers", _hanging), ("closed port", _closed))


async def _panel_ms(settings: object, repeats: int) -> list[float]:
    """``PixeryPanel()`` until it returns; each closed after one turn of the loop."""
    from pixery_widgets.providers.status import forget_known_models
    from pixery_widgets.widgets import PixeryPanel

    out = []
    for _ in range(repeats):
        forget_known_models()
        start = time.perf_counter()
        panel = PixeryPanel(settings, load=lambda: settings)  # type: ignore[arg-type]
        out.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0)  # the background check starts, as it would in a kernel
        panel.close()
    return out


async def _check_first_ms(settings: object, repeats: int) -> list[float]:
    """Baseline: await the health check, then build the panel."""
    from pixery_widgets.providers.status import acheck_selfhosted, forget_known_models
    from pixery_widgets.widgets import PixeryPanel

    out = []
    for _ in range(repeats):
        forget_known_models()
        start = time.perf_counter()
        await acheck_selfhosted(settings)  # type: ignore[arg-type]
        panel = PixeryPanel(settings, load=lambda: settings)  # type: ignore[arg-type]
        out.append((time.perf_counter() - start) * 1000)
        panel.close()
    return out


def run(quick: bool = False) -> list[Result]:
    repeats = 5 if quick else 15
    start = time.perf_counter()
    import pixery_widgets.widgets  # noqa: F401 - once per kernel, not per panel

    import_ms = (time.perf_counter() - start) * 1000
    rows = [
        Result.info(
            "first paint: importing the widgets (once per kernel)",
            import_ms,
            None,
            "ms",
            note="ipywidgets + anywidget; `import pixery_widgets` alone does not pay it",
        )
    ]
    asyncio.run(_panel_ms(bench_settings("http://127.0.0.1:9"), 2))  # warm-up
    for name, server in SERVERS:
        with server() as url:
            settings = bench_settings(url)
            panel = asyncio.run(_panel_ms(settings, repeats))
            # A hanging server costs the baseline its 2 s timeout every time.
            base_repeats = 3 if server is _hanging else repeats
            baseline = asyncio.run(_check_first_ms(settings, base_repeats))
        rows.append(
            Result.bound(
                f"first paint, server {name}",
                median(panel),
                "ms",
                below=TARGET_MS,
                baseline=median(baseline),
                note=f"median of {repeats}, max {max(panel):.1f} ms; baseline checks first",
                data={"panel_ms": panel, "baseline_ms": baseline},
            )
        )
    return rows


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(f"PixeryPanel() first paint (target < {TARGET_MS:.0f} ms); baseline: check, then draw")
    print(f"{'case':<55} {'panel':>9} {'check-first':>12}  status")
    for row in rows:
        print(
            f"{row.name:<55} {row.value_text(row.measured):>9} "
            f"{row.value_text(row.baseline):>12}  {row.status}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"benchmark": "first_paint", "rows": [r.to_json() for r in rows]}, indent=2)
        + "\n"
    )
    print(
        f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )


if __name__ == "__main__":
    main()
