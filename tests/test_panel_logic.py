"""PanelController: the menu and its selection, the form for the chosen model,
generating, cancelling and pre-warming, without any widget."""

from __future__ import annotations

import asyncio
import io
import random
from pathlib import Path

import pytest
from env_helpers import Env
from PIL import Image

from pixery_widgets.core import schema
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import InvalidRequestError
from pixery_widgets.core.types import HealthInfo, LocalModelInfo, SelfHostedStatus, ServerState
from pixery_widgets.session.controller import (
    FormValues,
    PanelController,
    batch_seeds,
    check_count,
    parse_seed,
)
from pixery_widgets.session.validation import build_request
from pixery_widgets.session.watcher import ServerWatcher

URL = "http://203.0.113.7:8000"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


def healthy(current: str = "animagine", loras: tuple[str, ...] = ("detail",)) -> SelfHostedStatus:
    health = HealthInfo(
        status="healthy",
        current_model=current,
        available_models=("animagine", "pony", "noobai"),
        gpu_name="RTX 4090",
    )
    models = {
        "animagine": LocalModelInfo("animagine", default_steps=30, default_cfg=6.0),
        "pony": LocalModelInfo("pony", default_steps=25, default_cfg=7.0),
        "noobai": LocalModelInfo("noobai", downloaded=False),
    }
    return SelfHostedStatus(ServerState.HEALTHY, url=URL, health=health, models=models, loras=loras)


def controller_with(status: SelfHostedStatus | None, tmp_path: Path, **env: str) -> PanelController:
    """A controller whose watcher already shows ``status`` (no network)."""
    if status is not None:
        env.setdefault("SELFHOSTED_API_URL", URL)
    watcher = ServerWatcher(load=Env(tmp_path, **env).load)

    async def check(_settings: Settings) -> SelfHostedStatus:
        assert status is not None
        return status

    watcher._check = check
    controller = PanelController(watcher)
    if status is not None:
        asyncio.run(watcher.check_now())
    return controller


# -- menu and selection -----------------------------------------------------------------


def test_without_server_or_keys_nothing_is_selected(tmp_path):
    ctrl = controller_with(None, tmp_path)
    assert all(not e.is_local for e in ctrl.menu)
    assert ctrl.selection is None
    assert not ctrl.view().can_generate


def test_a_key_makes_its_models_selectable_and_the_first_one_the_default(tmp_path):
    ctrl = controller_with(None, tmp_path, FAL_KEY="fal-secret")
    enabled = [e.id for e in ctrl.menu if e.enabled]
    assert enabled and all(e.provider == "fal" for e in ctrl.menu if e.enabled)
    assert ctrl.selection == enabled[0]


def test_healthy_server_makes_the_first_local_model_the_default(tmp_path):
    ctrl = controller_with(healthy(), tmp_path, FAL_KEY="k")
    assert ctrl.menu[0].id == "animagine"
    assert ctrl.selection == "animagine"


def test_a_users_choice_survives_the_server_turning_healthy(tmp_path):
    ctrl = controller_with(None, tmp_path, FAL_KEY="k", SELFHOSTED_API_URL=URL)
    assert ctrl.choose("flux-pro")
    ctrl.watcher._check = lambda _s: _answer(healthy())
    asyncio.run(ctrl.watcher.check_now())
    assert ctrl.menu[0].is_local
    assert ctrl.selection == "flux-pro"


async def _answer(status: SelfHostedStatus) -> SelfHostedStatus:
    return status


def test_a_greyed_entry_cannot_be_chosen(tmp_path):
    ctrl = controller_with(healthy(), tmp_path)
    assert not ctrl.choose("noobai")  # not downloaded
    assert not ctrl.choose("gemini-flash")  # no key
    assert not ctrl.choose("no-such-model")
    assert ctrl.selection == "animagine"
    assert not ctrl.user_chose


# -- the form for the chosen model --------------------------------------------------------


def test_local_model_form_has_negative_prompt_steps_cfg_loras_and_server_defaults(tmp_path):
    ctrl = controller_with(healthy(), tmp_path)
    view = ctrl.view()
    assert view.is_local  # which fields it takes: tests/test_panel_form.py
    assert (view.default_steps, view.default_cfg) == (30, 6.0)  # the server's, not the catalog's
    assert view.lora_enabled and view.loras == ("detail",)


def test_cloud_model_form_has_no_negative_prompt_steps_or_loras(tmp_path):
    ctrl = controller_with(healthy(), tmp_path, GEMINI_API_KEY="g")
    assert ctrl.choose("gemini-flash")
    view = ctrl.view()
    assert not view.is_local  # which fields it takes: tests/test_panel_form.py
    assert not view.lora_enabled and "own server" in view.lora_note


def test_lora_picker_says_when_the_server_has_none(tmp_path):
    ctrl = controller_with(healthy(loras=()), tmp_path)
    view = ctrl.view()
    assert view.lora_enabled and view.loras == ()
    assert view.lora_note == "Your server has no LoRAs."


def test_loras_are_off_while_the_server_is_unreachable(tmp_path):
    offline = SelfHostedStatus(ServerState.OFFLINE, url=URL, reason="timed out")
    ctrl = controller_with(offline, tmp_path)
    ctrl.selection = "animagine"  # as kept from a choice made while it was up
    view = ctrl.view()
    assert not view.lora_enabled and "reachable" in view.lora_note


def test_steps_and_cfg_follow_the_model_but_keep_the_users_edits(tmp_path):
    ctrl = controller_with(healthy(), tmp_path)
    assert ctrl.steps_cfg_to_show(28, 5.0) == (30, 6.0)
    assert ctrl.steps_cfg_to_show(30, 6.0) is None  # nothing new
    assert ctrl.steps_cfg_to_show(12, 6.0) is None  # the user's edit stays
    ctrl.choose("pony")
    assert ctrl.steps_cfg_to_show(12, 6.0) == (25, 7.0)  # another model: its defaults


def test_request_kwargs_leave_out_what_the_model_does_not_take(tmp_path):
    ctrl = controller_with(healthy(), tmp_path, OPENAI_API_KEY="o")
    form = FormValues(
        prompt="a cat",
        negative_prompt="blurry",
        size=(832, 1216),
        seed="7",
        steps=20,
        cfg_scale=4.5,
        reference=b"png",
        lora="detail",
        lora_scale=0.5,
    )
    local = ctrl.request_kwargs(form)
    assert local == {
        "width": 832,
        "height": 1216,
        "seed": 7,
        "negative_prompt": "blurry",
        "steps": 20,
        "cfg_scale": 4.5,
        "reference": b"png",
        "ip_adapter_scale": 0.7,
        "lora": "detail",
        "lora_scale": 0.5,
    }
    ctrl.choose("gpt-image")
    assert ctrl.request_kwargs(form) == {"width": 832, "height": 1216}


def test_every_model_gets_only_what_it_takes_and_its_checks_accept(tmp_path):
    """A full form yields, for each selectable model, keywords the schema says it takes and
    that pass its own checks: the panel can never send a keyword a back end refuses."""
    keys = {"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "FAL_KEY": "f"}
    ctrl = controller_with(healthy(), tmp_path, **keys)
    form = FormValues(
        prompt="a cat", negative_prompt="blurry", seed="7", steps=20, cfg_scale=4.5,
        reference=PNG, ip_adapter_scale=0.5, lora="detail", lora_scale=0.5,
    )  # fmt: skip
    chosen = [e.id for e in ctrl.menu if e.enabled and ctrl.choose(e.id)]
    assert len(chosen) >= 10
    for model in chosen:
        ctrl.choose(model)
        spec = ctrl.spec()
        kwargs = ctrl.request_kwargs(form)
        assert {"width", "height"} <= set(kwargs)
        assert all(schema.takes(spec, name) for name in kwargs), (model, kwargs)
        request = build_request("a cat", model, local_models=("animagine", "pony"), **kwargs)
        assert request.seed == (7 if spec.takes_seed else None), model


@pytest.mark.parametrize(("text", "seed"), [("", None), ("  ", None), ("42", 42), (" 7 ", 7)])
def test_an_empty_seed_means_random(text, seed):
    assert parse_seed(text) == seed


def test_a_seed_that_is_not_a_number_is_refused_in_words():
    with pytest.raises(InvalidRequestError, match="whole number"):
        parse_seed("seven")


# -- generating -----------------------------------------------------------------------------


def test_bad_form_input_is_a_failure_shown_not_raised(tmp_path):
    ctrl = controller_with(healthy(), tmp_path)

    async def body():
        return ctrl.start_generation(FormValues(prompt="a cat", seed="x"))

    assert asyncio.run(body()) is None
    assert ctrl.last_outcome == "failed"
    assert "seed" in (ctrl.last_error or "")
    assert not ctrl.running


def test_an_unexpected_exception_is_shown_in_words_and_the_panel_stays_usable(tmp_path):
    ctrl = controller_with(healthy(), tmp_path)

    async def broken(*_a, **_k):
        raise KeyError("oops")

    ctrl._generate = broken

    async def body():
        task = ctrl.start_generation(FormValues(prompt="a cat"))
        assert task is not None
        await task
        return ctrl.start_generation(FormValues(prompt="again"))

    second = asyncio.run(body())
    assert "Unexpected error: KeyError" in (ctrl.last_error or "")
    assert second is not None  # a new generation could start


def test_without_a_running_loop_generate_says_what_to_do_instead(tmp_path):
    ctrl = controller_with(healthy(), tmp_path)
    assert ctrl.start_generation(FormValues(prompt="a cat")) is None
    assert "agenerate" in (ctrl.last_error or "")


def test_generating_on_the_simulator_gives_an_image_and_rechecks_the_server(tmp_path, sim):
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
    ctrl = PanelController(watcher)

    async def body():
        await watcher.refresh()
        task = ctrl.start_generation(FormValues(prompt="a lighthouse", seed="3"))
        assert task is not None and ctrl.running
        generation = await task
        await ctrl.wait_idle()
        return generation

    generation = asyncio.run(body())
    assert generation is not None and generation.seed == 3
    assert ctrl.last_generation is generation and ctrl.last_outcome == "done"
    assert ctrl.elapsed() > 0
    assert [r.path for r in sim.request_log].count("/health") >= 2  # re-checked afterwards


def test_choosing_a_model_that_is_not_loaded_prewarms_it(tmp_path, sim):
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
    ctrl = PanelController(watcher)
    messages: list[str] = []
    ctrl.subscribe(lambda c, what: messages.append(c.message) if what == "message" else None)

    async def body():
        await watcher.refresh()
        assert ctrl.choose("pony")
        await ctrl.wait_idle()

    asyncio.run(body())
    switches = [r.json for r in sim.request_log if r.path == "/switch-model"]
    assert switches == [{"model": "pony"}]
    assert messages[0] == "Loading pony on your server…"
    assert messages[-1] == "pony is loaded on your server."
    assert watcher.status.health is not None and watcher.status.health.current_model == "pony"
    assert ctrl.entry("pony").loaded


def test_choosing_the_loaded_model_sends_no_switch(tmp_path, sim):
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
    ctrl = PanelController(watcher)

    async def body():
        await watcher.refresh()
        assert ctrl.choose("animagine")
        await ctrl.wait_idle()

    asyncio.run(body())
    assert not any(r.path == "/switch-model" for r in sim.request_log)


# -- a count above one: a batch on consecutive seeds ----------------------------------------


def test_batch_seeds_follow_the_given_seed():
    assert batch_seeds(4, 10, takes_seed=True) == [10, 11, 12, 13]
    assert batch_seeds(1, 7, takes_seed=True) == [7]


def test_batch_seeds_without_a_seed_follow_one_random_base():
    seeds = batch_seeds(5, None, takes_seed=True, rng=random.Random(3))
    assert seeds == list(range(seeds[0], seeds[0] + 5))
    assert seeds[0] >= 0 and seeds[-1] < 2**32
    assert batch_seeds(5, None, takes_seed=True, rng=random.Random(4)) != seeds


def test_batch_seeds_are_none_for_a_model_without_seed_control():
    assert batch_seeds(3, 10, takes_seed=False) == [None, None, None]


@pytest.mark.parametrize("count", [0, 65, -1, 2.5, True, "4"])
def test_a_count_outside_1_to_64_is_refused_in_words(count):
    with pytest.raises(InvalidRequestError, match="Count must be a whole number from 1 to 64"):
        check_count(count)


def test_seeds_that_would_pass_the_largest_seed_are_refused_in_words():
    with pytest.raises(InvalidRequestError, match="largest seed"):
        batch_seeds(3, 2**63 - 2, takes_seed=True)


def sim_controller(tmp_path: Path, url: str, **kwargs) -> PanelController:
    env = {"SELFHOSTED_API_URL": url, "PIXERY_ARCHIVE_DIR": str(tmp_path / "archive")}
    return PanelController(ServerWatcher(load=Env(tmp_path, **env).load), **kwargs)


def record_progress(ctrl: PanelController) -> list[tuple[int, int, bool, ServerState]]:
    """(settled, total, finished, server state) at every progress report."""
    seen: list[tuple[int, int, bool, ServerState]] = []

    def listener(c: PanelController, what: str) -> None:
        snap = c.progress()
        if what == "progress" and snap is not None:
            seen.append((snap.settled, snap.total, snap.finished, c.status.state))

    ctrl.subscribe(listener)
    return seen


def test_count_four_with_seed_ten_archives_four_images_on_seeds_10_to_13_in_order(tmp_path, sim):
    ctrl = sim_controller(tmp_path, sim.url)
    seen = record_progress(ctrl)

    async def body():
        await ctrl.watcher.refresh()
        task = ctrl.start_generation(FormValues(prompt="a lighthouse", seed="10", count=4))
        assert task is not None and ctrl.running
        last = await task
        await ctrl.wait_idle()
        return last

    last = asyncio.run(body())
    assert [g.seed for g in ctrl.batch_images] == [10, 11, 12, 13]  # arrival order
    assert [g.seed for g in ctrl.batch.generations] == [10, 11, 12, 13]
    assert [r.json["seed"] for r in sim.request_log if r.path == "/generate"] == [10, 11, 12, 13]
    archive = tmp_path / "archive"
    assert all(g.path is not None and g.path.is_file() for g in ctrl.batch_images)
    assert all(g.path.is_relative_to(archive) for g in ctrl.batch_images)
    assert last is ctrl.last_generation is ctrl.batch_images[-1]
    assert ctrl.last_outcome == "done" and ctrl.last_error is None and ctrl.batch_note is None
    final = ctrl.progress()
    assert final is not None and (final.done, final.settled, final.total) == (4, 4, 4)
    assert final.finished
    assert seen[-1][:3] == (4, 4, True)  # the progress reached N
    assert [s for s, *_ in seen] == sorted(s for s, *_ in seen)
    assert {state for *_, state in seen[:-1]} == {ServerState.BUSY}  # our own work: busy
    assert ctrl.progress_text().startswith("4 of 4 done · ")
    assert ctrl.status.state is ServerState.HEALTHY  # re-checked afterwards


def test_an_empty_seed_makes_consecutive_seeds_from_one_base(tmp_path, sim):
    ctrl = sim_controller(tmp_path, sim.url)

    async def body():
        await ctrl.watcher.refresh()
        task = ctrl.start_generation(FormValues(prompt="a lighthouse", seed="", count=3))
        assert task is not None
        await task
        await ctrl.wait_idle()

    asyncio.run(body())
    seeds = [g.seed for g in ctrl.batch_images]
    assert len(seeds) == 3 and seeds[0] is not None
    assert seeds == list(range(seeds[0], seeds[0] + 3))
    assert [r.json["seed"] for r in sim.request_log if r.path == "/generate"] == seeds


def test_count_one_takes_the_single_image_path(tmp_path, sim):
    async def no_batch(*_a, **_k):
        raise AssertionError("a count of 1 must not start a batch")

    ctrl = sim_controller(tmp_path, sim.url, start=no_batch)

    async def body():
        await ctrl.watcher.refresh()
        task = ctrl.start_generation(FormValues(prompt="a lighthouse", seed="5", count=1))
        assert task is not None
        return await task

    generation = asyncio.run(body())
    assert generation is not None and generation.seed == 5
    assert ctrl.batch is None and ctrl.progress() is None and ctrl.progress_text() == ""


def test_cancelling_a_batch_keeps_the_finished_images_and_cancels_the_rest(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=0.3)
    ctrl = sim_controller(tmp_path, sim.url)

    async def body():
        await ctrl.watcher.refresh()
        task = ctrl.start_generation(FormValues(prompt="slow ones", seed="20", count=6))
        assert task is not None
        while not ctrl.batch_images:
            await asyncio.sleep(0.01)
        assert ctrl.cancel()
        await asyncio.wait_for(task, 5)
        await ctrl.wait_idle()
        return task

    task = asyncio.run(body())
    batch = ctrl.batch
    kept = ctrl.batch_images
    assert not task.cancelled()  # the batch stopped; the panel's task ended normally
    assert 1 <= len(kept) < 6
    assert [g.seed for g in kept] == list(range(20, 20 + len(kept)))
    assert all(g.path is not None and g.path.is_file() for g in kept)  # archived
    assert len(batch.failed) == 6 - len(kept)
    assert {f.reason for f in batch.failed} == {"cancelled"}
    assert ctrl.last_outcome == "cancelled" and not ctrl.running
    assert ctrl.batch_note == f"Cancelled after {len(kept)} of 6 images."
    assert ctrl.batch_failures() == 0 and ctrl.last_error is None
    assert sum(r.path == "/generate" for r in sim.request_log) < 6  # the rest never went out
    assert f"{6 - len(kept)} cancelled" in ctrl.progress_text()


def test_a_failed_job_is_said_in_words_while_the_others_arrive(tmp_path, sim):
    sim.set_fault("/generate", "status_503", times=1)
    ctrl = sim_controller(tmp_path, sim.url)
    notes: list[tuple[str | None, int]] = []
    ctrl.subscribe(
        lambda c, what: (
            notes.append((c.batch_note, len(c.batch_images))) if what == "progress" else None
        )
    )

    async def body():
        await ctrl.watcher.refresh()
        task = ctrl.start_generation(FormValues(prompt="a lighthouse", seed="10", count=4))
        assert task is not None
        await task
        await ctrl.wait_idle()

    asyncio.run(body())
    assert [g.seed for g in ctrl.batch_images] == [11, 12, 13]
    note = ctrl.batch_note or ""
    assert note.startswith("1 of 4 failed: Your server at ") and "refused the request" in note
    assert ctrl.last_outcome == "done" and ctrl.last_error == note
    assert ctrl.batch_failures() == 1
    said_early = [n for n, shown in notes if n and shown < 3]
    assert said_early  # in words before the last images arrived
    assert "1 failed" in ctrl.progress_text()


def test_a_batch_refused_before_it_starts_is_a_failure_shown_not_raised(tmp_path, sim):
    ctrl = sim_controller(tmp_path, sim.url)

    async def body():
        await ctrl.watcher.refresh()
        first = ctrl.start_generation(FormValues(prompt="a cat", count=65))
        refused_count = (first, ctrl.last_error)
        task = ctrl.start_generation(FormValues(prompt="a cat", count=3, lora="no_such_lora"))
        assert task is not None
        await task
        await ctrl.wait_idle()
        return refused_count

    (first, count_error) = asyncio.run(body())
    assert first is None and "Count must be a whole number from 1 to 64" in (count_error or "")
    assert ctrl.last_outcome == "failed" and "no_such_lora" in (ctrl.last_error or "")
    assert ctrl.progress() is None  # nothing ran: no progress bar
    assert not any(r.path == "/generate" for r in sim.request_log)
    assert not ctrl.running


def test_a_cloud_model_without_seed_control_gets_n_jobs_without_seeds(tmp_path):
    ctrl = controller_with(None, tmp_path, GEMINI_API_KEY="g")
    calls: list[dict] = []

    async def start(prompt, model, **kwargs):
        calls.append({"prompt": prompt, "model": model, **kwargs})
        raise InvalidRequestError("stopped here by the test")

    ctrl._start_batch = start
    ctrl.choose("gemini-flash")

    async def body():
        task = ctrl.start_generation(FormValues(prompt="a cat", seed="9", count=3))
        assert task is not None
        await task

    asyncio.run(body())
    assert calls[0]["seeds"] == [None, None, None]
    assert calls[0]["model"] == "gemini-flash" and "seed" not in calls[0]
    assert ctrl.last_error == "stopped here by the test"
