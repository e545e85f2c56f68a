"""The benchmarks keep working: every module loads and keeps the protocol, and the
harness's helpers do what the benchmarks rely on. No speed is asserted here:
the only clocks are lower bounds that a correct helper cannot miss."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sqlite3
import sys
import time
import types
from pathlib import Path

import httpx
import pytest

# benchmarks/ is a folder of the repository, not of the installed package.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as runner  # noqa: E402
from benchmarks._harness import (  # noqa: E402
    Result,
    StallProbe,
    atimes,
    bench_settings,
    interleaved,
    median,
    paired,
    rss_mb,
    sim_process,
    times,
)

OURS = {
    "bench_client_overhead",
    "bench_gallery",
    "bench_kernel_stall",
    "bench_memory",
    "bench_menu_latency",
    "bench_notebook_weight",
    "bench_scale",
    "bench_sweep",
    "bench_pool",
}


def test_every_bench_module_imports_and_exposes_run_quick() -> None:
    names = runner.discover()
    assert set(names) >= OURS
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        run = getattr(module, "run", None)
        assert callable(run), f"{name} has no run()"
        quick = inspect.signature(run).parameters.get("quick")
        assert quick is not None and quick.default is False, f"{name}.run must take quick=False"


def test_only_keeps_the_modules_whose_name_contains_it() -> None:
    assert runner.discover(["menu"]) == ["bench_menu_latency"]
    assert runner.discover(["bench_memory"]) == ["bench_memory"]
    assert runner.discover(["no-such-benchmark"]) == []


def test_ratio_rows_judge_at_most_and_at_least() -> None:
    fast = Result.ratio("menu", 200.0, 300.0, "ms", at_most=0.7)
    slow = Result.ratio("menu", 250.0, 300.0, "ms", at_most=0.7)
    assert (fast.status, slow.status) == ("pass", "FAIL")
    assert fast.figure == pytest.approx(2 / 3)
    assert fast.target == "≤ 0.7 × baseline"
    assert Result.ratio("tput", 90.0, 100.0, "img/s", at_least=0.8).status == "pass"
    assert Result.ratio("tput", 70.0, 100.0, "img/s", at_least=0.8).status == "FAIL"
    with pytest.raises(ValueError):
        Result.ratio("x", 1.0, 1.0, "ms")


def test_bound_info_unavailable_and_error_rows_say_what_they_are() -> None:
    assert Result.bound("stall", 12.0, "ms", below=20.0, baseline=3.0).status == "pass"
    assert Result.bound("stall", 20.0, "ms", below=20.0).status == "FAIL"
    assert Result.info("why", 5.0, 10.0, "ms").status == "info"
    missing = Result.unavailable("weight", "< 2 MB", "px.run_batch does not exist yet")
    assert (missing.status, missing.figure) == ("n/a", None)
    assert Result.error("boom", "ValueError: x").status == "ERROR"


def test_table_shows_every_row_and_its_note() -> None:
    rows = [
        Result.ratio("menu latency", 210.0, 310.0, "ms", at_most=0.7, note="two round trips"),
        Result.unavailable("notebook weight", "< 2 MB", "not there yet"),
    ]
    text = runner.table(rows)
    assert "menu latency" in text and "0.68×" in text and "pass" in text
    assert "notebook weight" in text and "n/a" in text
    assert "[menu latency] two round trips" in text and "not there yet" in text


def test_json_holds_every_row_with_its_status(tmp_path: Path) -> None:
    out = tmp_path / "results" / "latest.json"
    rows = [Result.bound("stall", 25.0, "ms", below=20.0, data={"samples": [25.0]})]
    runner.write_json(out, rows, quick=True, durations={"bench_x": 1.234})
    payload = json.loads(out.read_text())
    assert payload["quick"] is True
    assert payload["results"][0]["status"] == "FAIL"
    assert payload["results"][0]["data"] == {"samples": [25.0]}
    assert payload["durations_s"] == {"bench_x": 1.23}


@pytest.fixture
def fake_bench(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("benchmarks.bench_fake")
    monkeypatch.setitem(sys.modules, "benchmarks.bench_fake", module)
    monkeypatch.setattr(runner, "discover", lambda only=(): ["bench_fake"])
    return module


def test_a_crashing_benchmark_becomes_an_error_row_and_a_failing_exit(
    fake_bench: types.ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(quick: bool = False) -> list[Result]:
        raise RuntimeError("the simulator did not start")

    fake_bench.run = run  # type: ignore[attr-defined]
    assert runner.main(["--json", str(tmp_path / "r.json")]) == 1
    assert "ERROR" in capsys.readouterr().out
    saved = json.loads((tmp_path / "r.json").read_text())["results"][0]
    assert saved["status"] == "ERROR" and "did not start" in saved["note"]


def test_quick_is_passed_on_and_all_met_targets_exit_zero(
    fake_bench: types.ModuleType, tmp_path: Path
) -> None:
    seen: list[bool] = []

    def run(quick: bool = False) -> list[Result]:
        seen.append(quick)
        return [Result.bound("ok", 1.0, "ms", below=2.0), Result.unavailable("later", "< 1", "why")]

    fake_bench.run = run  # type: ignore[attr-defined]
    assert runner.main(["--quick", "--json", str(tmp_path / "r.json")]) == 0
    assert seen == [True]


def test_timing_helpers_give_one_duration_per_repetition() -> None:
    calls: list[str] = []
    assert len(times(lambda: calls.append("s"), 3, warmup=2)) == 3
    assert len(calls) == 5

    async def a() -> None:
        calls.append("a")

    async def b() -> None:
        calls.append("b")

    async def setup() -> None:
        calls.append("setup")

    async def main() -> tuple[list[float], list[float], list[float]]:
        calls.clear()
        first, second = await paired(a, b, 4, warmup=0, setup=setup)
        return first, second, await atimes(a, 2, warmup=0)

    first, second, third = asyncio.run(main())
    assert (len(first), len(second), len(third)) == (4, 4, 2)
    # Alternated AB, BA, AB, BA, each after its setup.
    assert [c for c in calls if c != "setup"][:8] == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert calls.count("setup") == 8
    assert median([3.0, 1.0, 2.0]) == 2.0


def test_interleaved_runs_every_variant_per_repeat_in_alternating_order() -> None:
    calls: list[str] = []

    def variant(name: str):
        async def fn() -> None:
            calls.append(name)

        return fn

    timed = asyncio.run(interleaved([variant("a"), variant("b"), variant("c")], 3, warmup=0))
    assert [len(t) for t in timed] == [3, 3, 3]
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]


def test_stall_probe_sees_a_loop_kept_busy() -> None:
    async def main() -> StallProbe:
        async with StallProbe() as probe:
            await asyncio.sleep(0.01)
            end = time.perf_counter() + 0.03
            while time.perf_counter() < end:  # 30 ms of work on the loop itself
                pass
            await asyncio.sleep(0.01)
        return probe

    probe = asyncio.run(main())
    assert probe.max_ms >= 25  # it cannot wake before the busy loop lets go
    assert probe.ticks > 1
    late, _at, _cpu = probe.worst()[0]
    assert late == pytest.approx(probe.max_ms, abs=0.01)
    assert probe.max_cpu_ms > 0


def test_rss_is_measured() -> None:
    assert rss_mb() > 1


@pytest.mark.timeout(240)
def test_the_scale_benchmark_runs_its_batch_in_a_kernel_in_quick_mode() -> None:
    from benchmarks import bench_scale

    rows = bench_scale.run(quick=True)
    assert [r.kind for r in rows] == ["bound", "bound", "bound"]
    assert all(r.measured is not None and r.baseline is not None for r in rows)
    kernel = rows[1].data
    assert kernel["png_bytes"] > bench_scale.QUICK_JOBS * 10_000  # the batch's images, held
    assert kernel["grid_cells"] == bench_scale.QUICK_JOBS  # a small batch is shown whole
    before, after = kernel["notebook_bytes"]
    assert after > before and kernel["after_mb"] > 0


def test_bench_settings_ignore_the_users_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHOSTED_API_URL", "http://203.0.113.7:8000")
    monkeypatch.setenv("FAL_KEY", "fal-secret")
    settings = bench_settings("http://127.0.0.1:9", "/tmp/archive-x")
    assert settings.selfhosted_url == "http://127.0.0.1:9"
    assert settings.providers_with_keys == frozenset()
    assert str(settings.archive_dir) == "/tmp/archive-x"


@pytest.mark.timeout(60)
def test_sim_process_serves_with_latency_and_stops() -> None:
    with sim_process(latency=0.05, gen_seconds=0, loras=["one"]) as sim:
        with httpx.Client(trust_env=False, timeout=10) as client:
            client.get(f"{sim.url}/loras")  # connection made, app warm
            start = time.perf_counter()
            answer = client.get(f"{sim.url}/loras")
            waited = time.perf_counter() - start
        process = sim.process
        assert answer.json() == {"loras": ["one"]}
        assert waited >= 0.05  # the latency is added, never skipped
    assert process.poll() is not None  # the process is gone once the block ends


def test_pool_benchmark_counts_switches_from_what_the_servers_were_sent() -> None:
    from benchmarks.bench_pool import _count_switches

    assert _count_switches("pony", ["pony", "pony"]) == 0
    assert _count_switches("pony", ["animagine", "animagine", "pony"]) == 2


@pytest.mark.timeout(120)
def test_pool_benchmark_runs_a_small_spread_and_a_death_to_the_end() -> None:
    """Tiny sizes: every image must arrive (the benchmark raises otherwise); no speed judged."""
    from benchmarks import bench_pool

    spread = bench_pool.measure_spread(jobs=4, runs=1, servers=2)
    assert len(spread["walls_s"]) == 1 and len(spread["floors_s"]) == 1
    assert spread["ideal_s"] == 4 * bench_pool.GEN_SECONDS / 2
    death = bench_pool.measure_death(jobs=6, runs=1, servers=3)
    (only,) = death["runs"]
    assert sum(only["per_server"]) == 6 and only["left"] <= 3


def test_the_gallery_benchmarks_archive_is_a_real_archive_the_gallery_shows(tmp_path: Path) -> None:
    from benchmarks import bench_gallery
    from pixery_widgets.archive import Archive
    from pixery_widgets.core.config import Settings
    from pixery_widgets.widgets.gallery import Gallery

    bench_gallery.build(tmp_path / "archive", 2000)
    archive = Archive(tmp_path / "archive", settings=Settings())
    gallery = Gallery(archive, page_size=bench_gallery.PAGE)
    assert gallery.total == 2000 and len(gallery.records) == bench_gallery.PAGE
    assert all(card["thumb"].startswith("data:image/jpeg") for card in gallery.records)
    assert gallery.records[0]["id"] == "bench-001999"  # newest first
    gallery.command("search", query=bench_gallery._COMMON)
    assert gallery.total == 200  # one prompt in ten
    gallery.command("search", query=bench_gallery._RARE)
    assert gallery.total == 2  # one in a thousand
    assert archive.tags() and archive.models() == ["animagine", "gemini-flash", "noobai", "pony"]
    gallery.close()
    archive.close()
    with sqlite3.connect(tmp_path / "archive" / "index.sqlite") as bare:  # the baselines run
        assert len(bare.execute(bench_gallery.BARE_PAGE, (60,)).fetchall()) == 60
        words = bare.execute(bench_gallery.BARE_WORDS, ('"1girl"*', 60)).fetchall()
        assert len(words) == 60
