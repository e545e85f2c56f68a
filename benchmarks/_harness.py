"""What every benchmark shares: results, timing, a simulator process, a stall probe.

The protocol
------------
A benchmark is a module ``benchmarks/bench_<name>.py`` with one function::

    def run(quick: bool = False) -> list[Result]

``python -m benchmarks`` imports every such module, calls ``run`` and prints one
table of all the ``Result`` rows (``--quick``: fewer repetitions; ``--only NAME``
runs the modules whose name contains NAME). ``run`` must not print; it may
take a few seconds to tens of seconds (``quick``: 20 s at most). It owns the
event loops it needs (``asyncio.run`` inside ``run``) and cleans up every process
it starts. An exception in ``run`` is reported as an error row; the others go on.

The machines are shared and noisy, so no absolute wall-clock figure is judged
on its own: each row is a ratio against a baseline measured in the same run,
or a bound with the same run's baseline shown beside it, and every timed
figure is the median of several repetitions (``median``, ``paired``,
``atimes``). Build rows with ``Result.ratio``, ``Result.bound``,
``Result.info`` or ``Result.unavailable``.

This module is also the simulator process: ``python -m benchmarks._harness serve``,
started by ``sim_process`` (``_serve`` says why not ``python -m pixery_widgets.sim``).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import heapq
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "Result",
    "SimProcess",
    "StallProbe",
    "atimes",
    "bench_settings",
    "close_shared_client",
    "interleaved",
    "median",
    "paired",
    "peak_rss_mb",
    "rss_mb",
    "sim_process",
    "times",
]

#: The repository root (the simulator process runs from here).
ROOT = Path(__file__).resolve().parent.parent


# -- results ---------------------------------------------------------------------------------


@dataclass
class Result:
    """One row of the table: a figure judged against a target, with its baseline.

    ``figure`` is what the target judges: a ratio (measured / baseline) or a
    bound (the measured value itself). ``passed`` is None for a row that only
    informs, or that could not be measured (then ``figure`` is None too).
    """

    name: str
    target: str
    measured: float | None = None
    baseline: float | None = None
    unit: str = ""
    figure: float | None = None
    kind: str = "info"  # "ratio" | "bound" | "info" | "n/a" | "error"
    passed: bool | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ratio(
        cls,
        name: str,
        measured: float,
        baseline: float,
        unit: str,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> Result:
        """measured / baseline, judged ``<= at_most`` or ``>= at_least``."""
        if (at_most is None) == (at_least is None):
            raise ValueError("give exactly one of at_most and at_least")
        figure = measured / baseline if baseline else float("inf")
        if at_most is not None:
            target, passed = f"≤ {at_most:g} × baseline", figure <= at_most
        else:
            assert at_least is not None
            target, passed = f"≥ {at_least:g} × baseline", figure >= at_least
        return cls(
            name, target, measured, baseline, unit, figure, "ratio", passed, note, data or {}
        )

    @classmethod
    def bound(
        cls,
        name: str,
        measured: float,
        unit: str,
        *,
        below: float,
        baseline: float | None = None,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> Result:
        """measured, judged ``< below`` (same unit); ``baseline`` is shown for context."""
        target = f"< {below:g} {unit}"
        return cls(
            name,
            target,
            measured,
            baseline,
            unit,
            measured,
            "bound",
            measured < below,
            note,
            data or {},
        )

    @classmethod
    def info(
        cls,
        name: str,
        measured: float | None,
        baseline: float | None,
        unit: str,
        *,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> Result:
        """A row with no target of its own, to explain another (ratio shown if both given)."""
        figure = measured / baseline if measured is not None and baseline else None
        return cls(name, "(info)", measured, baseline, unit, figure, "info", None, note, data or {})

    @classmethod
    def unavailable(cls, name: str, target: str, why: str) -> Result:
        """A benchmark that cannot run yet, and why (never a silent pass)."""
        return cls(name, target, kind="n/a", note=why)

    @classmethod
    def error(cls, name: str, why: str) -> Result:
        return cls(name, "", kind="error", passed=False, note=why)

    @property
    def status(self) -> str:
        if self.kind == "error":
            return "ERROR"
        if self.kind == "n/a":
            return "n/a"
        if self.passed is None:
            return "info"
        return "pass" if self.passed else "FAIL"

    def figure_text(self) -> str:
        if self.figure is None:
            return "-"
        if self.kind == "ratio" or (
            self.kind == "info" and self.measured is not None and self.baseline
        ):
            return f"{self.figure:.2f}×"
        return f"{_num(self.figure)} {self.unit}".strip()

    def value_text(self, value: float | None) -> str:
        return "-" if value is None else f"{_num(value)} {self.unit}".strip()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        return out


def _num(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


# -- timing ----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def times(fn: Callable[[], object], repeats: int, *, warmup: int = 1) -> list[float]:
    """Seconds taken by ``fn()``, ``repeats`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


async def atimes(
    fn: Callable[[], Awaitable[object]], repeats: int, *, warmup: int = 1
) -> list[float]:
    """``times`` for a coroutine function."""
    for _ in range(warmup):
        await fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - start)
    return out


async def paired(
    measured: Callable[[], Awaitable[object]],
    baseline: Callable[[], Awaitable[object]],
    repeats: int,
    *,
    warmup: int = 1,
    setup: Callable[[], Awaitable[object]] | None = None,
) -> tuple[list[float], list[float]]:
    """Seconds for ``measured`` and ``baseline``, alternated (AB, BA, AB…) so that a
    noisy neighbour or a drift hits both alike; the lists are in run order.
    ``setup`` is awaited, untimed, before every call."""
    a, b = await interleaved([measured, baseline], repeats, warmup=warmup, setup=setup)
    return a, b


async def interleaved(
    fns: Sequence[Callable[[], Awaitable[object]]],
    repeats: int,
    *,
    warmup: int = 1,
    setup: Callable[[], Awaitable[object]] | None = None,
) -> list[list[float]]:
    """``paired`` for any number of variants: seconds per variant, in run order.

    Each repeat runs every variant once, in an order that alternates direction
    (ABC, CBA, ABC…), so none always runs first or after the same neighbour."""
    for _ in range(warmup):
        for fn in fns:
            if setup is not None:
                await setup()
            await fn()
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for i in range(repeats):
        for k in order if i % 2 == 0 else reversed(order):
            if setup is not None:
                await setup()
            start = time.perf_counter()
            await fns[k]()
            times[k].append(time.perf_counter() - start)
    return times


# -- the event-loop stall probe --------------------------------------------------------------


class StallProbe:
    """A task that sleeps ``interval`` over and over and records how late it wakes.

    The lateness of a wake-up is how long the loop was busy with something
    else: the longest one is the longest stall a kernel user would feel.

        async with StallProbe() as probe:
            await work()
        probe.max_ms
    """

    def __init__(self, interval: float = 0.001, keep: int = 10) -> None:
        self.interval = interval
        self.keep = keep
        self.ticks = 0
        self.max_s = 0.0
        #: Most CPU time the loop's own thread spent between two ticks: work done on the loop.
        self.max_cpu_s = 0.0
        # heap of (lateness, seconds since start, CPU time the loop's thread used meanwhile)
        self._worst: list[tuple[float, float, float]] = []
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self.duration_s = 0.0

    async def __aenter__(self) -> StallProbe:
        self._started = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="stall-probe")
        await asyncio.sleep(0)  # let the first tick start before the work does
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.duration_s = time.perf_counter() - self._started
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        while True:
            before, cpu_before = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.interval)
            now, cpu = time.perf_counter(), time.thread_time() - cpu_before
            late = max(0.0, now - before - self.interval)
            self.ticks += 1
            self.max_s = max(self.max_s, late)
            self.max_cpu_s = max(self.max_cpu_s, cpu)
            item = (late, before - self._started, cpu)
            if len(self._worst) < self.keep:
                heapq.heappush(self._worst, item)
            elif late > self._worst[0][0]:
                heapq.heapreplace(self._worst, item)

    @property
    def max_ms(self) -> float:
        return self.max_s * 1000

    @property
    def max_cpu_ms(self) -> float:
        return self.max_cpu_s * 1000

    def worst(self) -> list[tuple[float, float, float]]:
        """The longest stalls, longest first, as (ms late, s into the probe, ms of CPU the
        loop's own thread used meanwhile). Late with little CPU: the loop was waiting (for
        the GIL, for a CPU, or on blocking I/O), not running code of its own."""
        return [
            (round(late * 1000, 2), round(at, 3), round(cpu * 1000, 2))
            for late, at, cpu in sorted(self._worst, reverse=True)
        ]


# -- memory ----------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS) in MB (10^6 bytes); the peak where
    there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss) in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


# -- settings and the shared client ----------------------------------------------------------


_empty_dir: Path | None = None


def bench_settings(url: str, archive_dir: str | os.PathLike[str] | None = None) -> Any:
    """Settings for ``url`` that ignore the user's environment and ``.env`` files."""
    from pixery_widgets import load_settings

    global _empty_dir
    if _empty_dir is None or not _empty_dir.is_dir():
        _empty_dir = Path(tempfile.mkdtemp(prefix="pixery-bench-home-"))
        atexit.register(shutil.rmtree, _empty_dir, True)
    empty = _empty_dir  # no .env files here: only ``environ`` counts
    environ = {"SELFHOSTED_API_URL": url}
    if archive_dir is not None:
        environ["PIXERY_ARCHIVE_DIR"] = str(archive_dir)
    return load_settings(environ, cwd=empty, home=empty)


async def close_shared_client(*, reopen: bool = False) -> None:
    """Close this loop's shared httpx client, so the next request starts with an empty
    pool; ``reopen`` makes the new client now (creating one takes tens of ms)."""
    from pixery_widgets.core.http import get_client

    await get_client().aclose()
    if reopen:
        get_client()


# -- the simulator, in its own process -------------------------------------------------------


@dataclass
class SimProcess:
    url: str
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def sim_process(
    *, latency: float = 0.0, serialised: bool = False, startup_timeout: float = 30.0, **config: Any
) -> Iterator[SimProcess]:
    """The simulator in a separate process on a free port, stopped on exit.

    ``config`` is ``SimConfig`` keyword arguments (JSON-able ones). ``latency``
    delays every API request by that many seconds: as network latency (outside
    the server's one-at-a-time lock, so concurrent requests overlap) or, with
    ``serialised``, as handler time (one request's delay after another's).

    A separate process keeps the server's work off the benchmark's event loop
    and out of its GIL.
    """
    cmd = [sys.executable, "-m", "benchmarks._harness", "serve", "--config", json.dumps(config)]
    if latency:
        cmd += ["--latency", str(latency)]
    if serialised:
        cmd.append("--serialised")
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            url = _read_url(proc, startup_timeout)
            if url is None:
                errors.seek(0)
                raise RuntimeError(f"the simulator process did not start: {errors.read()[-2000:]}")
            _wait_healthy(url, startup_timeout)
            yield SimProcess(url, proc)
        finally:
            _stop(proc)


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The URL the process prints first, or None if it dies or stays silent."""
    box: list[str] = []
    reader = threading.Thread(
        target=lambda: box.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    line = box[0] if box else ""
    marker = "serving on "
    return line.split(marker, 1)[1].strip() if marker in line else None


def _wait_healthy(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        while True:
            try:
                if client.get(f"{url}/_sim/config").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator at {url} never answered")
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


class _Latency:
    """ASGI wrapper: every API request waits ``seconds`` before the simulator sees it.

    Not serialised, the wait models network round-trip time: concurrent
    requests wait side by side, then queue briefly at the server's lock. With
    ``serialised`` it models handler time: requests take turns, waits and all.
    """

    def __init__(self, app: Any, seconds: float, serialised: bool) -> None:
        self.app = app
        self.seconds = seconds
        self.lock = asyncio.Lock() if serialised else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
        elif self.lock is None:
            await asyncio.sleep(self.seconds)
            await self.app(scope, receive, send)
        else:
            async with self.lock:
                await asyncio.sleep(self.seconds)
                await self.app(scope, receive, send)


def _serve(argv: Sequence[str]) -> int:
    """Serve the simulator's app (optionally behind ``_Latency``) on a free loopback port.

    Not ``python -m pixery_widgets.sim``: its command line can neither put ``_Latency``
    in front of the app nor take a whole ``SimConfig`` as JSON. The socket comes from
    the simulator's own ``bind_socket``, which makes it with ``IPPROTO_TCP`` so that
    asyncio switches Nagle's algorithm off on accepted connections; otherwise every
    small answer would wait ~40 ms for the client's delayed ACK, swamping what is
    measured here.
    """
    import uvicorn

    from pixery_widgets.sim import SimConfig, create_app
    from pixery_widgets.sim._server import bind_socket

    parser = argparse.ArgumentParser(prog="python -m benchmarks._harness serve")
    parser.add_argument("--config", default="{}")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--serialised", action="store_true")
    args = parser.parse_args(argv)
    app: Any = create_app(SimConfig(**json.loads(args.config)))
    if args.latency:
        app = _Latency(app, args.latency, args.serialised)
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, http="h11", ws="none"
        )
    )
    print(f"serving on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(_serve(sys.argv[2:]))
    sys.exit(
        "usage: python -m benchmarks._harness serve [--config JSON] [--latency S] [--serialised]"
    )
