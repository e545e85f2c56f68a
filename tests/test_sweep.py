"""Sweeps: vary= axes crossed in a documented order, every value and every image checked
and priced before anything is sent, Prompt S/R, and the panel's typed values."""

from __future__ import annotations

import asyncio

import pytest
import respx
from cloud_fixtures import ENV, hermetic_settings

import pixery_widgets as px
from pixery_widgets.core.catalog import CATALOG
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import (
    CostLimitError,
    InvalidRequestError,
    UnknownLoraError,
)
from pixery_widgets.providers import get_provider
from pixery_widgets.session.batch_plan import plan_batch
from pixery_widgets.session.sweep import plan_sweep
from pixery_widgets.session.sweep_text import (
    MAX_PANEL_IMAGES,
    panel_sweep,
    parse_axis_values,
    preview,
)
from pixery_widgets.session.sweep_values import axis_names, prompt_sr, value_label


def run(coro):
    return asyncio.run(coro)


def specs(*names):
    return [CATALOG[n] for n in names]


def generate_bodies(sim) -> list[dict]:
    return [r.json for r in sim.request_log if r.path == "/generate"]


# -- the crossing ------------------------------------------------------------------------------


def test_vary_axes_nest_between_seed_and_model_in_the_order_given():
    sweep = plan_sweep(
        ["a", "b"],
        specs("animagine", "pony"),
        [1],
        vary={"cfg_scale": [4, 8], "steps": [10, 20]},
    )
    expected = [
        (p, 1, (("cfg_scale", c), ("steps", s)), m)
        for p in ("a", "b")
        for c in (4, 8)
        for s in (10, 20)
        for m in ("animagine", "pony")
    ]
    assert [(j.prompt, j.seed, j.overrides, j.model) for j in sweep.jobs] == expected
    assert [a.name for a in sweep.axes] == ["prompt", "seed", "cfg_scale", "steps", "model"]
    assert [a.letter for a in sweep.axes] == [None, None, "x", "y", None]
    assert [j.index for j in sweep.jobs] == list(range(16))
    assert sweep.jobs[5].coords == (0, 0, 1, 0, 1)  # a, seed 1, cfg 8, steps 10, pony


def test_prompt_and_seed_named_in_vary_take_their_place_among_the_axes():
    sr = prompt_sr("a red car", "red", ["blue"])
    sweep = plan_sweep("a red car", specs("animagine"), None, vary={"seed": [5, 6], "prompt": sr})
    assert [(j.seed, j.prompt) for j in sweep.jobs] == [
        (5, "a red car"),
        (5, "a blue car"),
        (6, "a red car"),
        (6, "a blue car"),
    ]
    assert [a.name for a in sweep.axes] == ["seed", "prompt", "model"]
    assert sweep.axis("prompt").labels == ("red", "blue")  # the S/R words, not the prompts
    assert [a.name for a in sweep.varied] == ["seed", "prompt"]  # a sheet's x, then y


def test_a_size_axis_sets_width_and_height_together_and_is_labelled_as_a_size():
    sweep = plan_sweep(
        "x", specs("animagine"), [1], vary={"size": [(1024, 1024), "832x1216", [768, 1344]]}
    )
    assert [dict(j.overrides) for j in sweep.jobs] == [
        {"width": 1024, "height": 1024},
        {"width": 832, "height": 1216},
        {"width": 768, "height": 1344},
    ]
    assert sweep.axis("size").labels == ("1024x1024", "832x1216", "768x1344")


def test_a_lora_axis_takes_none_for_no_lora_and_the_seed_axis_says_random():
    sweep = plan_sweep("x", specs("animagine"), None, vary={"lora": [None, "none", "pixel_art"]})
    assert [dict(j.overrides)["lora"] for j in sweep.jobs] == [None, None, "pixel_art"]
    assert sweep.axis("lora").labels == ("none", "none", "pixel_art")
    assert sweep.axis("seed").labels == ("random",)


def test_prompt_sr_as_the_prompts_shares_one_draw_of_seeds_across_its_prompts():
    sr = prompt_sr("a red car, red sky", "red", ["blue", "green"])
    assert list(sr) == ["a red car, red sky", "a blue car, blue sky", "a green car, green sky"]
    sweep = plan_sweep(sr, specs("animagine"), 2)
    seeds = [[j.seed for j in sweep.jobs if j.prompt == p] for p in sr]
    assert seeds[0] == seeds[1] == seeds[2] and len(set(seeds[0])) == 2
    assert sweep.axis("prompt").labels == ("red", "blue", "green")
    assert sweep.axis("prompt").title(1) == "Prompt S/R: blue"
    plain = plan_sweep(["p", "q"], specs("animagine"), 2)  # a batch's own prompts: each draws
    assert plain.axis("seed").labels == ("#1", "#2")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("a car", "red", ["blue"]), "did not find 'red'"),
        (("", "red", ["blue"]), "needs a prompt"),
        (("a red car", "", ["blue"]), "needs a word"),
        (("a red car", "red", [3]), "replacements are text"),
    ],
)
def test_prompt_sr_refuses_what_it_cannot_replace(args, words):
    with pytest.raises(InvalidRequestError, match=words):
        prompt_sr(*args)


def test_every_request_field_but_the_fixed_ones_can_be_an_axis():
    names = axis_names()
    assert {"prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "seed"} <= set(
        names
    )
    assert {"ip_adapter_scale", "lora", "lora_scale", "size", "model"} <= set(names)
    assert not {"provider", "references", "extra"} & set(names)
    assert value_label("prompt", "word " * 30).endswith("…")
    assert len(value_label("prompt", "word " * 30)) == 40


# -- refused before anything is sent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("prompts", "kwargs", "words"),
    [
        ("x", {"vary": {"colour": [1]}}, "'colour' is not a request field"),
        ("x", {"vary": {"reference": ["a.png"]}}, "cannot be an axis"),
        ("x", {"vary": {"model": ["pony"]}}, r"model=\[...\]"),
        ("x", {"seeds": [1], "vary": {"seed": [2]}}, "seeds once"),
        ("x", {"cfg_scale": 5, "vary": {"cfg_scale": [4]}}, "cfg_scale is given both"),
        ("x", {"width": 832, "vary": {"size": [(832, 1216)]}}, "width is given both"),
        ("x", {"vary": {"size": [(832, 1216)], "height": [1024]}}, "both set the height"),
        ("x", {"vary": {"cfg_scale": []}}, "is empty"),
        ("x", {"vary": {"cfg_scale": "4, 6"}}, "must be a list"),
        ("x", {"vary": {"lora_scale": [0, 1]}}, "changes nothing without a LoRA"),
        ("x", {"vary": {"size": ["big"]}}, r"size='big' \(x=1 of 1\): A size is"),
        ("x", {"vary": {"cfg_scale": [4, 25]}}, r"cfg_scale=25 \(x=2 of 2\): CFG scale must be"),
        ("x", {"vary": {"steps": [10], "cfg_scale": [4, "a"]}}, r"cfg_scale=a \(y=2 of 2\)"),
        ("a", {"vary": {"prompt": ["a", " "]}}, r"prompt= \(x=2 of 2\): The prompt is empty"),
        ("a red car", {"vary": {"prompt": ["a blue car"]}}, "the first of those prompts"),
        (
            "x",
            {"model": ["animagine", "gemini-flash"], "vary": {"lora": [None, "pixel_art"]}},
            r"lora=pixel_art \(x=2 of 2\) with gemini-flash: LoRAs run on your own server",
        ),
    ],
)
def test_a_bad_sweep_is_refused_with_its_place_before_any_request(tmp_path, prompts, kwargs, words):
    settings = hermetic_settings(tmp_path, {**ENV, "SELFHOSTED_API_URL": "http://203.0.113.7:8000"})
    with (
        respx.mock(assert_all_called=False) as router,
        pytest.raises(InvalidRequestError, match=words),
    ):
        run(px.arun_batch(prompts, settings=settings, progress=False, **kwargs))
    assert router.calls.call_count == 0
    assert not (tmp_path / "archive").exists()


def test_an_unknown_lora_on_an_axis_is_named_after_one_look_at_the_servers_list(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    with pytest.raises(UnknownLoraError, match=r"lora=nope \(x=3 of 3\): The server has no LoRA"):
        run(
            px.arun_batch(
                "x", seeds=[1], settings=settings, vary={"lora": [None, "pixel_art", "nope"]}
            )
        )
    assert [r.path for r in sim.request_log].count("/loras") == 1
    assert generate_bodies(sim) == []


def test_every_combination_is_checked_before_anything_is_sent(sim, tmp_path, monkeypatch):
    """A back end's own rule on a combination (here: a made-up one) is met before any image."""
    provider = get_provider("selfhosted")
    seen: list[tuple] = []

    def validate(request):
        seen.append((request.cfg_scale, request.lora_scale))
        if (request.cfg_scale, request.lora_scale) == (6.0, 1.0):
            raise InvalidRequestError("this server cannot draw CFG 6 with LoRA scale 1")

    monkeypatch.setattr(provider, "validate", validate)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    vary = {"cfg_scale": [4, 6, 8], "lora_scale": [0, 0.5, 1.0]}
    with pytest.raises(InvalidRequestError) as info:
        run(px.arun_batch("x", seeds=[1], lora="pixel_art", settings=settings, vary=vary))
    assert info.value.message == (
        "image 6 of 9 (cfg_scale=6 (x=2 of 3), lora_scale=1 (y=3 of 3)): "
        "this server cannot draw CFG 6 with LoRA scale 1"
    )
    assert generate_bodies(sim) == []
    up_to_the_bad_one = {(c, s) for c in (4.0, 6.0) for s in (0.0, 0.5, 1.0)}
    assert up_to_the_bad_one <= set(seen)  # each image's request, not only each value

    seen.clear()
    vary = {"cfg_scale": [4, 8], "lora_scale": [0, 0.5]}
    batch = run(
        plan_batch("x", seeds=[1], lora="pixel_art", settings=settings, vary=vary, archive=False)
    )
    assert len(batch.jobs) == 4 and {(c, s) for c in (4.0, 8.0) for s in (0.0, 0.5)} <= set(seen)


def test_the_whole_products_cost_is_estimated_at_each_cells_size(tmp_path):
    settings = hermetic_settings(tmp_path, ENV)
    sizes = [(1024, 1024), (1536, 1024)]
    with respx.mock(assert_all_called=False) as router:
        batch = run(
            plan_batch(
                ["a", "b"],
                ["gpt-image", "z-image-turbo"],
                seeds=[1],
                vary={"size": sizes},
                archive=False,
                settings=settings,
            )
        )
        with pytest.raises(CostLimitError, match="8 images would cost about"):
            run(
                plan_batch(
                    ["a", "b"],
                    ["gpt-image", "z-image-turbo"],
                    vary={"size": sizes},
                    max_cost_usd=0.1,
                    settings=settings,
                )
            )
        assert router.calls.call_count == 0
    per_prompt = sum(0.04 + 0.005 * w * h / 1e6 for w, h in sizes)
    assert len(batch.jobs) == 8
    assert batch.estimated_cost_usd == pytest.approx(2 * per_prompt, abs=1e-6)


# -- against the simulator -------------------------------------------------------------------------


def test_a_sweep_keeps_its_order_and_a_server_draws_it_model_by_model(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = run(
        px.arun_batch(
            "a lighthouse",
            ["animagine", "pony"],
            seeds=[3],
            lora="pixel_art",
            vary={"cfg_scale": [4, 8], "lora_scale": [0.0, 1.0]},
            settings=settings,
            progress=False,
        )
    )
    assert batch.ok and len(batch.generations) == 8
    assert [(g.model, g.params["cfg_scale"], g.request.lora_scale) for g in batch.generations] == [
        (m, c, s) for c in (4.0, 8.0) for s in (0.0, 1.0) for m in ("animagine", "pony")
    ]
    sent = [b["model"] for b in generate_bodies(sim)]
    assert sent == ["animagine"] * 4 + ["pony"] * 4  # each checkpoint loaded once
    assert {(b["cfg_scale"], b["lora_scale"]) for b in generate_bodies(sim)} == {
        (c, s) for c in (4.0, 8.0) for s in (0.0, 1.0)
    }
    assert len({g.png_bytes for g in batch.generations}) == 4  # cfg does not change a sim picture


def test_a_failed_cell_retries_with_its_own_settings(sim, tmp_path):
    sim.set_fault("/generate", "status_503", times=1)
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = run(
        px.arun_batch(
            "x", seeds=[1], vary={"steps": [10, 20, 30]}, settings=settings, progress=False
        )
    )
    assert len(batch.failed) == 1 and batch.failed[0].job.overrides == (("steps", 10),)
    assert "steps=10" in batch.failed[0].job.label()
    run(batch.aretry_failed(progress=False))
    assert batch.ok
    assert [g.params["steps"] for g in batch.generations] == [10, 20, 30]


# -- the panel's typed values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "values"),
    [
        ("cfg_scale", "4, 6, 8", [4.0, 6.0, 8.0]),
        ("cfg_scale", "4-8 (+2)", [4.0, 6.0, 8.0]),
        ("steps", "4-8 [3]", [4, 6, 8]),
        ("steps", "1-3", [1, 2, 3]),
        ("steps", "8-4", [8, 7, 6, 5, 4]),
        ("steps", "10-1 (-3)", [10, 7, 4, 1]),
        ("steps", "20, 1-3, 30", [20, 1, 2, 3, 30]),
        ("seed", "1-10 [3]", [1, 5, 10]),  # as A1111: evenly spaced, then whole
        ("cfg_scale", "0.5-1 (+0.25)", [0.5, 0.75, 1.0]),
        ("cfg_scale", "1-2 (+0.1)", [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0]),
        ("lora_scale", "0-1 [5]", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("lora_scale", " .5 , 1.", [0.5, 1.0]),
        ("size", "832x1216, 1024×1024", [(832, 1216), (1024, 1024)]),
        ("lora", "none, pixel_art", [None, "pixel_art"]),
        ("prompt", 'red, blue, "dark, green"', ["red", "blue", "dark, green"]),
        ("model", "animagine, pony", ["animagine", "pony"]),
    ],
)
def test_typed_values_and_a1111_ranges_expand(field, text, values):
    assert parse_axis_values(field, text) == values


@pytest.mark.parametrize(
    ("field", "text", "words"),
    [
        ("steps", "", "type its values"),
        ("steps", " , ", "type its values"),
        ("steps", "4.5", "not a whole number"),
        ("cfg_scale", "four", "not a number"),
        ("cfg_scale", "4-8 (+0)", "never reaches its end"),
        ("steps", "1-5 (-1)", "never reaches its end"),
        ("steps", "1-100000", "gives 100000 values"),
        ("steps", "1-5 [0]", "asks for 0 values"),
        ("size", "huge", "not a size"),
        ("colour", "red", "not a request field"),
    ],
)
def test_typed_values_that_cannot_be_read_say_why(field, text, words):
    with pytest.raises(InvalidRequestError, match=words):
        parse_axis_values(field, text)


def test_panel_rows_become_a_sweeps_arguments_without_the_forms_own_value():
    form = {"width": 1024, "height": 1024, "seed": 7, "steps": 28, "cfg_scale": 5.0, "lora": None}
    plan = panel_sweep(
        "a red car", "animagine", form, [("cfg_scale", "4-8 (+2)"), ("size", "832x1216")]
    )
    assert plan is not None and (plan.x, plan.y, plan.images) == ("cfg_scale", "size", 3)
    assert plan.vary == {"cfg_scale": [4.0, 6.0, 8.0], "size": [(832, 1216)]}
    assert (
        "cfg_scale" not in plan.kwargs and "width" not in plan.kwargs and plan.kwargs["steps"] == 28
    )
    sr = panel_sweep(
        "a red car", "animagine", form, [("prompt", "red, blue"), ("model", "animagine, pony")]
    )
    assert sr is not None and list(sr.vary["prompt"]) == ["a red car", "a blue car"]
    assert sr.model == ("animagine", "pony") and sr.images == 4
    seeded = panel_sweep("x", "animagine", form, [("seed", "1-3")])
    assert seeded is not None and seeded.vary == {"seed": [1, 2, 3]} and "seed" not in seeded.kwargs
    assert panel_sweep("x", "animagine", form, [("", "4, 6")]) is None


def test_panel_sweeps_are_bounded_and_name_two_different_fields():
    with pytest.raises(InvalidRequestError, match="same field"):
        panel_sweep("x", "animagine", {}, [("steps", "1"), ("steps", "2")])
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_PANEL_IMAGES}"):
        panel_sweep("x", "animagine", {}, [("steps", "1-11"), ("cfg_scale", "1-10")])
    with pytest.raises(InvalidRequestError, match=f"makes {4 * 30} images"):
        panel_sweep("x", "animagine", {}, [("steps", "1-30")], count=4)
    with pytest.raises(InvalidRequestError, match="did not find 'red'"):
        panel_sweep("a blue car", "animagine", {}, [("prompt", "red, green")])


def test_the_preview_says_what_the_rows_make_or_what_is_wrong():
    assert preview([("cfg_scale", "4-8 (+2)"), ("lora", "none, pixel_art")]) == (
        "CFG scale 4, 6, 8 × LoRA none, pixel_art: 6 images",
        True,
    )
    assert preview([("steps", "1-20")])[0] == "Steps 1, 2, 3, 4, 5, 6, … (20): 20 images"
    assert preview([("cfg_scale", "4-x")]) == ("CFG scale: '4-x' is not a number.", False)
    assert preview([("", "")])[1] is False
