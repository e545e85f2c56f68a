"""Batch planning, the cost guard, scheduling per back end, progress and the grid."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time

import httpx
import pytest
import respx
from cloud_fixtures import (
    ENV,
    FAL_QUEUE,
    OPENAI_URL,
    fal_submit,
    fal_urls,
    hermetic_settings,
    openai_image,
)
from PIL import Image

import pixery_widgets as px
from pixery_widgets.archive.files import thumbnail
from pixery_widgets.core.catalog import CATALOG
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import (
    CostLimitError,
    InvalidRequestError,
    PixeryError,
    UnknownModelError,
)
from pixery_widgets.core.types import Generation
from pixery_widgets.providers.selfhosted import generations_in_flight
from pixery_widgets.session.batch import GRID_THUMB_BYTES, Batch, JobFailure
from pixery_widgets.session.batch_plan import plan_batch, plan_jobs
from pixery_widgets.session.progress import (
    ProgressSnapshot,
    TextProgress,
    make_reporter,
)
from pixery_widgets.widgets.progress import WidgetProgress


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def cloud_settings(tmp_path) -> Settings:
    """Sentinel keys for every cloud provider, the archive in tmp_path, no ~/.env read."""
    return hermetic_settings(tmp_path, ENV)


# -- planning ---------------------------------------------------------------------------------


def specs(*names):
    return [CATALOG[n] for n in names]


def test_jobs_are_prompt_major_then_seed_then_model():
    jobs = plan_jobs(["a", "b"], specs("animagine", "pony"), [1, 2])
    assert [(j.prompt, j.seed, j.model) for j in jobs] == [
        ("a", 1, "animagine"),
        ("a", 1, "pony"),
        ("a", 2, "animagine"),
        ("a", 2, "pony"),
        ("b", 1, "animagine"),
        ("b", 1, "pony"),
        ("b", 2, "animagine"),
        ("b", 2, "pony"),
    ]
    assert [j.index for j in jobs] == list(range(8))


def test_a_seed_count_draws_that_many_recorded_seeds_per_prompt_shared_by_models():
    jobs = plan_jobs(["a", "b"], specs("animagine", "pony"), 3)
    assert len(jobs) == 12
    seeds_a = [j.seed for j in jobs if j.prompt == "a" and j.model == "animagine"]
    assert seeds_a == [j.seed for j in jobs if j.prompt == "a" and j.model == "pony"]
    assert len(seeds_a) == 3 and all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds_a)


def test_no_seeds_means_one_job_per_prompt_with_the_back_end_choosing():
    jobs = plan_jobs(["a", "b", "c"], specs("animagine"), None)
    assert [(j.prompt, j.seed) for j in jobs] == [("a", None), ("b", None), ("c", None)]


def test_models_without_seed_control_get_no_seed():
    jobs = plan_jobs(["a"], specs("animagine", "gemini-flash"), [5, 6])
    assert [(j.model, j.seed) for j in jobs] == [
        ("animagine", 5),
        ("gemini-flash", None),
        ("animagine", 6),
        ("gemini-flash", None),
    ]


@pytest.mark.parametrize(
    ("prompts", "kwargs", "error", "words"),
    [
        ([], {}, InvalidRequestError, "no prompts"),
        (["ok", "  "], {}, InvalidRequestError, "Prompt 2"),
        (["ok"], {"seeds": 0}, InvalidRequestError, "at least 1"),
        (["ok"], {"seeds": []}, InvalidRequestError, "seeds is empty"),
        (["ok"], {"seed": 3}, InvalidRequestError, "seeds="),
        (["ok"], {"concurrency": 0}, InvalidRequestError, "concurrency"),
        (["ok"], {"model": "no-such-model"}, UnknownModelError, "no-such-model"),
        (["ok"], {"width": 4000}, InvalidRequestError, "Width"),
    ],
)
def test_bad_batches_are_refused_before_any_request(tmp_path, prompts, kwargs, error, words):
    settings = Settings(selfhosted_url="http://203.0.113.7:8000", archive_dir=tmp_path)
    with respx.mock(assert_all_called=False) as router, pytest.raises(error, match=words):
        run(px.arun_batch(prompts, settings=settings, progress=False, **kwargs))
    assert router.calls.call_count == 0


# -- the cost guard --------------------------------------------------------------------------


def test_cost_guard_refuses_an_expensive_batch_before_any_request(cloud_settings):
    prompts = [f"poster {n}" for n in range(10)]
    with respx.mock(assert_all_called=False) as router:
        with pytest.raises(CostLimitError) as info:
            run(
                px.arun_batch(
                    prompts,
                    model="gpt-image",
                    seeds=3,
                    max_cost_usd=1.0,
                    settings=cloud_settings,
                    progress=False,
                )
            )
        assert router.calls.call_count == 0
    message = str(info.value)
    assert "30 images" in message and "$1.200" in message and "$1.000" in message
    assert not (cloud_settings.archive_dir).exists()


def test_cost_guard_applies_before_the_missing_key_check(tmp_path):
    no_keys = hermetic_settings(tmp_path, {})
    with pytest.raises(CostLimitError):
        run(px.arun_batch(["a", "b"], model="gemini-pro", max_cost_usd=0.2, settings=no_keys))


def test_cost_estimate_uses_list_prices_and_sizes(cloud_settings):
    with respx.mock(assert_all_called=False) as router:
        batch = run(
            plan_batch(
                ["a", "b"],
                ["gpt-image", "z-image-turbo", "animagine"],
                seeds=[1, 2],
                width=1536,
                height=1024,
                max_cost_usd=0.25,
                archive=False,
                settings=cloud_settings,
            )
        )
        assert router.calls.call_count == 0
    per_round = 0.04 + 0.005 * 1536 * 1024 / 1e6 + 0.0
    assert batch.estimated_cost_usd == pytest.approx(4 * per_round, abs=1e-5)
    assert batch.estimated_cost_usd < 0.25
    assert all(r is None for r in batch.results)


# -- scheduling -------------------------------------------------------------------------------


def _png(color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="PNG")
    return buf.getvalue()


class SlowOpenAI:
    """An OpenAI images endpoint where each prompt takes its own time; records starts."""

    def __init__(self, durations: dict[str, float]) -> None:
        self.durations = durations
        self.in_flight = 0
        self.peak = 0
        self.started: dict[str, float] = {}
        self.t0 = time.monotonic()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["prompt"]
        self.started[prompt] = time.monotonic() - self.t0
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.durations.get(prompt, 0.02))
        finally:
            self.in_flight -= 1
        import base64

        return httpx.Response(200, json=openai_image(base64.b64encode(_png()).decode()))


def test_cloud_jobs_run_four_at_a_time_by_default(cloud_settings):
    server = SlowOpenAI({})
    prompts = [f"p{n}" for n in range(10)]
    with respx.mock(assert_all_called=False) as router:
        router.post(OPENAI_URL).mock(side_effect=server)
        batch = run(
            px.arun_batch(prompts, model="gpt-image", settings=cloud_settings, progress=False)
        )
    assert batch.ok and server.peak == 4
    assert batch.cost_usd == pytest.approx(10 * 0.04)


def test_a_free_slot_takes_the_next_job_at_once_without_waves(cloud_settings):
    # p0 is slow; with two slots, p1..p4 must run one after another in the other
    # slot while p0 is still drawing (a wave scheduler would wait for p0).
    server = SlowOpenAI({"p0": 0.6, "p1": 0.05, "p2": 0.05, "p3": 0.05, "p4": 0.05})
    prompts = [f"p{n}" for n in range(5)]
    with respx.mock(assert_all_called=False) as router:
        router.post(OPENAI_URL).mock(side_effect=server)
        batch = run(
            px.arun_batch(
                prompts, model="gpt-image", concurrency=2, settings=cloud_settings, progress=False
            )
        )
    assert batch.ok and server.peak == 2
    assert server.started["p4"] < server.started["p0"] + 0.5  # started before p0 finished
    assert [g.prompt for g in batch.generations] == prompts  # input order kept


def test_selfhosted_server_gets_one_request_at_a_time_unless_told(sim_factory, tmp_path):
    sim = sim_factory(gen_seconds=0.03)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)

    async def peak_in_flight(**kwargs) -> tuple[int, Batch]:
        peak = 0

        async def sample():
            nonlocal peak
            while True:
                peak = max(peak, generations_in_flight(sim.url))
                await asyncio.sleep(0.002)

        sampler = asyncio.create_task(sample())
        batch = await px.arun_batch(
            [f"q{n}" for n in range(6)], settings=settings, progress=False, archive=False, **kwargs
        )
        sampler.cancel()
        return peak, batch

    peak, batch = run(peak_in_flight())
    assert batch.ok and peak == 1
    peak, batch = run(peak_in_flight(concurrency=3))
    assert batch.ok and peak == 3
    peak, batch = run(peak_in_flight(concurrency={"selfhosted": 2, "fal": 8}))
    assert batch.ok and peak == 2


def test_selfhosted_jobs_run_grouped_by_model_but_results_keep_input_order(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = run(
        px.arun_batch(
            ["a", "b"], ["animagine", "pony"], seeds=[1], settings=settings, progress=False
        )
    )
    sent = [r.json["model"] for r in sim.request_log if r.path == "/generate"]
    assert sent == ["animagine", "animagine", "pony", "pony"]  # one checkpoint switch
    assert [(g.prompt, g.model) for g in batch.generations] == [
        ("a", "animagine"),
        ("a", "pony"),
        ("b", "animagine"),
        ("b", "pony"),
    ]


def test_cancelling_a_batch_cancels_queued_requests_at_fal(cloud_settings):
    api_id = CATALOG["flux-schnell"].api_id
    ids = [f"req-{n}" for n in range(3)]
    polled: set[str] = set()

    def submit(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=fal_submit(api_id, ids[len(submitted.calls) - 1]))

    def status(request: httpx.Request) -> httpx.Response:
        polled.add(request.url.path.split("/")[-2])
        return httpx.Response(200, json={"status": "IN_QUEUE", "queue_position": 5})

    async def scenario() -> Batch:
        batch = await px.start_batch(
            ["a", "b", "c"], model="flux-schnell", settings=cloud_settings, progress=False
        )
        while len(polled) < 3:
            await asyncio.sleep(0.005)
        batch.cancel()
        return await batch

    with respx.mock(assert_all_called=False) as router:
        submitted = router.post(f"{FAL_QUEUE}/{api_id}").mock(side_effect=submit)
        for rid in ids:
            urls = fal_urls(api_id, rid)
            router.get(urls["status_url"]).mock(side_effect=status)
            router.put(urls["cancel_url"]).mock(return_value=httpx.Response(200, json={}))
        batch = run(scenario())
        cancels = [c for c in router.calls if c.request.method == "PUT"]
    assert {f.reason for f in batch.failed} == {"cancelled"} and len(batch.failed) == 3
    assert sorted(c.request.url.path.split("/")[-2] for c in cancels) == ids
    assert batch.cost_usd == 0.0


# -- progress --------------------------------------------------------------------------------


def snap(**kw):
    base = dict(total=10, done=3, failed=1, running=1, elapsed_s=8.0, cost_usd=0.12)
    return ProgressSnapshot(**{**base, **kw})


def test_eta_extrapolates_from_settled_jobs():
    assert snap().eta_s == pytest.approx(8.0 / 4 * 6)
    assert snap(done=0, failed=0).eta_s is None
    assert snap(finished=True).eta_s is None
    assert snap().summary() == (
        "3 of 10 done · 1 failed · 00:08 elapsed · about 00:12 left · $0.120"
    )


def test_cancelled_jobs_are_counted_apart_from_failures_and_settle_like_them():
    stopped = snap(cancelled=2)
    assert stopped.settled == 6 and stopped.eta_s == pytest.approx(8.0 / 6 * 4)
    assert stopped.summary() == (
        "3 of 10 done · 1 failed · 2 cancelled · 00:08 elapsed · about 00:05 left · $0.120"
    )


def test_text_progress_is_one_line_on_the_stream():
    stream = io.StringIO()
    bar = TextProgress(stream, width=10, min_interval=0)
    bar(snap())
    bar(snap(done=9, failed=1, running=0, finished=True))
    bar.close()
    out = stream.getvalue()
    assert out.count("\n") == 1 and out.endswith("\n")
    assert out.split("\r")[-1].strip().startswith("[##########] 9 of 10 done · 1 failed")


def test_widget_progress_updates_bar_and_label_through_traits():
    shown = []
    widget = WidgetProgress(display=shown.append)
    assert shown == [widget.box]
    widget(snap())
    assert (widget.bar.value, widget.bar.max) == (4, 10)
    assert "about 00:12 left" in widget.label.value
    widget(snap(done=10, failed=0, finished=True))
    assert widget.bar.value == 10 and widget.bar.bar_style == "success"


def test_outside_a_kernel_progress_is_text_and_false_means_none():
    assert isinstance(make_reporter(True), TextProgress)
    assert make_reporter(False) is None


def test_a_batch_reports_progress_to_a_callable_and_stays_quiet_without(sim, tmp_path, capsys):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    seen: list[ProgressSnapshot] = []
    run(px.arun_batch(["x", "y", "z"], settings=settings, progress=seen.append))
    assert seen[-1].finished and seen[-1].done == 3 and seen[-1].total == 3
    assert [s.done for s in seen] == sorted(s.done for s in seen)
    run(px.arun_batch(["x"], settings=settings, progress=False))
    assert capsys.readouterr().err == ""
    run(px.arun_batch(["x"], settings=settings))
    assert "1 of 1 done" in capsys.readouterr().err


# -- display -----------------------------------------------------------------------------------


def noise_png(side: int = 768) -> bytes:
    """Random pixels: the worst case for thumbnail size."""
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def unplanned_batch(jobs) -> Batch:
    """A ``Batch`` of ``jobs`` built directly (no planning, no archive), to fill by hand."""
    return Batch(
        jobs,
        params={},
        settings=Settings(),
        settings_given=True,
        archive=None,
        concurrency=None,
        estimated_cost_usd=0.0,
    )


def drawn(png: bytes) -> Generation:
    """An image as the self-hosted server's answer gives it, for a batch filled by hand."""
    return Generation(
        png_bytes=png,
        seed=1,
        model="animagine",
        provider="selfhosted",
        params={},
        elapsed_s=1.0,
        cost_usd=0.0,
    )


def test_fifty_image_batch_display_stays_under_two_megabytes():
    jobs = plan_jobs([f"prompt {n}" for n in range(50)], specs("animagine"), [1])
    batch = unplanned_batch(jobs)
    noise = noise_png()
    for job in jobs:
        batch.results[job.index] = drawn(noise)
    html = batch._repr_html_()
    assert html.count("<img") == 50
    assert "image/png;base64,iVBOR" not in html  # thumbnails are JPEG, never the PNGs
    assert len(html.encode()) < 2_000_000


def test_a_thousand_image_batch_shows_its_first_images_and_stays_under_two_megabytes():
    jobs = plan_jobs([f"prompt {n}" for n in range(1000)], specs("animagine"), [1])
    batch = unplanned_batch(jobs)
    thumb = thumbnail(noise_png(256))  # one worst-case thumbnail, for every image
    tiny = _png()
    for job in jobs:
        batch.results[job.index] = drawn(tiny)
        batch._thumbs[job.index] = thumb
    batch.results[999] = JobFailure(jobs[999], PixeryError("no answer", reason="timed out"))
    html = batch._repr_html_()
    fits = GRID_THUMB_BYTES // len(thumb)
    assert html.count("<img") == fits < 1000
    assert f"the first {fits} shown" in html and "1 failed" in html
    assert len(html.encode()) < 2_000_000
    del batch.results[fits:]  # a batch that fits is shown whole, without the note
    batch.jobs = batch.jobs[:fits]
    assert batch._repr_html_().count("<img") == fits and "shown" not in batch._repr_html_()
