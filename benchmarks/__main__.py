"""``python -m benchmarks [--quick] [--only NAME] [--json PATH]``: run, tabulate, save.

Runs every ``benchmarks/bench_*.py`` (see ``_harness`` for the protocol),
prints one table and writes ``benchmarks/results/latest.json``. The exit
status is 0 when every target was met (rows that could not run yet count as
"n/a", not as failures), 1 when a target was missed or a benchmark crashed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._harness import Result

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "latest.json"


def discover(only: Sequence[str] = ()) -> list[str]:
    """Module names ``bench_*`` in this folder, sorted; ``only`` keeps those containing any."""
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if only:
        names = [n for n in names if any(o.removeprefix("bench_") in n for o in only)]
    return names


def run_module(name: str, quick: bool) -> tuple[list[Result], float]:
    """The module's rows and the seconds it took; a crash becomes one error row."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"{__package__}.{name}")
        run = getattr(module, "run", None)
        if not callable(run):
            raise TypeError(f"{name} has no run(quick) -> list[Result]")
        rows = list(run(quick=quick))
        bad = [r for r in rows if not isinstance(r, Result)]
        if bad:
            raise TypeError(f"{name}.run returned {type(bad[0]).__name__}, not Result")
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        rows = [Result.error(name.removeprefix("bench_"), last)]
        rows[0].data["traceback"] = traceback.format_exc()
    return rows, time.perf_counter() - started


def table(rows: Sequence[Result]) -> str:
    """The results as an aligned plain-text table, with the notes below it."""
    header = ("benchmark", "measured", "baseline", "ratio/bound", "target", "result")
    lines = [
        (
            r.name,
            r.value_text(r.measured),
            r.value_text(r.baseline),
            r.figure_text(),
            r.target,
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    notes = [f"  [{r.name}] {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out)


def write_json(
    path: Path, rows: Sequence[Result], *, quick: bool, durations: dict[str, float]
) -> None:
    payload: dict[str, Any] = {
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "durations_s": {k: round(v, 2) for k, v in durations.items()},
        "results": [r.to_json() for r in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run modules whose name contains NAME (repeatable)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the results (default {DEFAULT_JSON.relative_to(HERE.parent)})",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    args = parser.parse_args(argv)

    names = discover(args.only)
    if args.list:
        print("\n".join(names))
        return 0
    if not names:
        print(f"no benchmark matches {args.only}", file=sys.stderr)
        return 1
    rows: list[Result] = []
    durations: dict[str, float] = {}
    for name in names:
        print(f"running {name}…", file=sys.stderr, flush=True)
        found, seconds = run_module(name, args.quick)
        rows += found
        durations[name] = seconds
    total = sum(durations.values())
    print(table(rows))
    print(
        f"\n{len(rows)} rows in {total:.0f} s{' (quick)' if args.quick else ''}; JSON: {args.json}"
    )
    write_json(args.json, rows, quick=args.quick, durations=durations)
    return 1 if any(r.status in ("FAIL", "ERROR") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
