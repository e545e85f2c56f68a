"""The panel's request form is built from the request schema (``widgets/form.py``)."""

from __future__ import annotations

import dataclasses

import pytest

from pixery_widgets.core import schema
from pixery_widgets.core.catalog import CATALOG
from pixery_widgets.session.controller import FormValues
from pixery_widgets.widgets.form import CONTROLS, RequestForm


def test_every_request_field_has_exactly_one_control():
    assert set(CONTROLS) == {f.name for f in schema.FIELDS}
    for name, control in CONTROLS.items():
        assert name in control.fields


def test_labels_ranges_and_defaults_come_from_the_schema():
    form = RequestForm()
    checked: dict[str, set[str]] = {"label": set(), "range": set(), "default": set()}
    for name, control in CONTROLS.items():
        declared = schema.field(name)
        widget = form.widgets[control.attr]
        if control.fields[0] != name:
            continue  # a shared control takes its label, range and default from its first field
        if control.label is None and hasattr(widget, "description"):
            assert widget.description == declared.label, name
            checked["label"].add(name)
        if control.bounded:
            assert (widget.min, widget.max) == declared.range, name
            checked["range"].add(name)
        shown = getattr(widget, "value", None)
        if declared.default not in (None, ...) and not isinstance(shown, tuple):
            assert shown == declared.default, name
            checked["default"].add(name)
    # at least these were compared (a field declared later adds to them)
    assert checked["label"] >= {"prompt", "steps", "seed", "reference"}
    assert checked["range"] >= {"steps", "cfg_scale", "ip_adapter_scale"}
    assert checked["default"] >= {"ip_adapter_scale"}


def test_what_the_form_reads_is_what_formvalues_holds():
    read = set(RequestForm().values())
    own = {"count", "sweep"}  # the panel's, not request fields
    assert read == {f.name for f in dataclasses.fields(FormValues)} - own


def test_loading_values_reads_them_back():
    form = RequestForm()
    form.widgets["lora_picker"].show(["pixel_art"], enabled=True)
    ref = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    notes = form.load(
        {
            "prompt": "a fox", "negative_prompt": "lowres", "width": 832, "height": 1216,
            "seed": 7, "steps": 30, "cfg_scale": 6.5, "reference": (ref,),
            "ip_adapter_scale": 0.4, "lora": "pixel_art", "lora_scale": 0.6,
        }
    )  # fmt: skip
    assert notes == []
    assert form.values().items() >= {
        "prompt": "a fox", "negative_prompt": "lowres", "size": (832, 1216), "seed": "7",
        "steps": 30, "cfg_scale": 6.5, "reference": ref, "ip_adapter_scale": 0.4,
        "lora": "pixel_art", "lora_scale": 0.6,
    }.items()  # fmt: skip
    assert form.widgets["reference"].value[0]["type"] == "image/png"


def test_what_cannot_be_loaded_is_said():
    form = RequestForm()
    notes = form.load({"width": 1000, "height": 1000, "lora": "gone", "reference": (b"a", b"b")})
    assert any("1000×1000 is not in the menu" in n for n in notes)
    assert any("LoRA gone is not offered" in n for n in notes)
    assert any("first of 2" in n for n in notes)


@pytest.mark.parametrize("model", ["animagine", "gemini-flash", "gpt-image", None])
def test_fitting_shows_exactly_what_the_model_takes(model):
    form = RequestForm()
    spec = CATALOG[model] if model else None
    form.fit(spec)
    for name in ("negative_prompt", "steps", "reference"):
        attr = CONTROLS[name].attr
        taken = spec is not None and schema.takes(spec, name)
        assert form.shown(attr) == taken, (model, name)
    seed_taken = spec is not None and schema.takes(spec, "seed")
    seed = form.widgets["seed"]
    assert seed.disabled == (not seed_taken)  # no model: nothing to seed yet
    assert seed.placeholder == ("random" if seed_taken or spec is None else "not used")


def test_a_local_model_shows_negative_prompt_steps_cfg_reference_and_seed():
    form = RequestForm()
    form.fit(CATALOG["animagine"])
    assert all(form.shown(a) for a in ("negative_prompt", "steps", "cfg", "reference"))
    assert form.shown("ip_adapter_scale") and not form.widgets["seed"].disabled


def test_gemini_shows_a_reference_but_no_negative_prompt_steps_cfg_or_seed():
    form = RequestForm()
    form.fit(CATALOG["gemini-flash"])
    assert form.shown("reference")  # Gemini takes reference images
    assert not any(form.shown(a) for a in ("negative_prompt", "steps", "cfg", "ip_adapter_scale"))
    assert form.widgets["seed"].disabled and form.widgets["seed"].placeholder == "not used"
