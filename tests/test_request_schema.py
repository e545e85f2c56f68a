"""The request schema is the one place a field is declared; everything else follows it.

Each test pins one place that lists fields (the request type, validation, the
self-hosted body, the simulator's idea of that body, the panel's form, the
provider option lists) against ``core/schema.py``, so adding a field there and
forgetting a place fails here, by name.
"""

from __future__ import annotations

import dataclasses
import io

import pytest
from PIL import Image

from pixery_widgets import InvalidRequestError
from pixery_widgets.core import schema
from pixery_widgets.core.catalog import CATALOG
from pixery_widgets.core.types import GenerationRequest
from pixery_widgets.providers import gemini, openai, selfhosted
from pixery_widgets.session.controller import FormValues
from pixery_widgets.session.validation import RANGES, build_request
from pixery_widgets.sim._app import GenerateRequest as SimGenerateBody

FIELD_NAMES = [f.name for f in schema.FIELDS]


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_the_schema_declares_at_least_the_known_fields_once_each():
    assert len(FIELD_NAMES) == len(set(FIELD_NAMES))
    assert set(FIELD_NAMES) >= {
        "prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "seed",
        "reference", "ip_adapter_scale", "lora", "lora_scale",
    }  # fmt: skip
    for f in (*schema.FIELDS, *schema.OPTIONS):
        assert f.backends and set(f.backends) <= set(schema.BACKENDS), f.name
        assert f.label, f.name


def test_options_are_unique_per_back_end_and_never_shadow_a_field():
    pairs = [(o.name, b) for o in schema.OPTIONS for b in o.backends]
    assert len(pairs) == len(set(pairs))
    assert not {o.name for o in schema.OPTIONS} & set(FIELD_NAMES)
    for o in schema.OPTIONS:
        for model in o.models or ():
            assert CATALOG[model].provider in o.backends, (o.name, model)


def test_generation_request_has_exactly_the_schemas_fields_with_its_defaults():
    declared = [f for f in dataclasses.fields(GenerationRequest)]
    names = [f.name for f in declared]
    assert names == ["prompt", "model", "provider"] + [
        f.attribute for f in schema.FIELDS if f.name != "prompt"
    ] + ["extra"]
    defaults = {f.name: f.default for f in declared}
    for f in schema.FIELDS[1:]:
        assert defaults[f.attribute] == schema.check_value(f.name, f.default), f.name


def test_describe_gives_every_field_once():
    request = build_request("a cat", "animagine", lora="x", reference=png(), seed=3)
    described = request.describe()
    expected = {"model", "provider", "reference_hash"} | set(FIELD_NAMES) - {"reference"}
    assert set(described) == expected
    assert described["seed"] == 3 and described["lora_scale"] == 0.8
    assert described["ip_adapter_scale"] == 0.7 and described["reference_hash"]
    bare = build_request("a cat", "animagine").describe()
    assert bare["lora_scale"] is None and bare["ip_adapter_scale"] is None  # need lora / reference


def test_local_validation_ranges_come_from_the_schema():
    assert {f.name: f.range for f in schema.FIELDS if f.range is not None} == RANGES
    assert RANGES["steps"] == (1, 50) and RANGES["lora_scale"] == (0.0, 1.5)


def test_every_field_the_self_hosted_server_takes_has_a_body_key():
    assert set(selfhosted.BODY_KEYS) == {f.name for f in schema.fields_for("selfhosted")}
    body = selfhosted._generate_body(build_request("a cat", "animagine", seed=5, lora="x"))
    assert set(body) == {"model", *selfhosted.BODY_KEYS.values()}
    assert body["seed"] == 5 and body["lora_name"] == "x" and body["reference_image"] is None


def test_the_simulator_validates_the_body_as_the_schema_does():
    """The simulator stands in for the server: same body keys, defaults and ranges."""
    sim_fields = SimGenerateBody.model_fields
    assert set(sim_fields) == {"model", *selfhosted.BODY_KEYS.values()}
    for name, key in selfhosted.BODY_KEYS.items():
        declared = schema.field(name)
        if declared.default is not ...:
            assert sim_fields[key].default == declared.default, name
        bounds = {type(m).__name__: m for m in sim_fields[key].metadata}
        if name != "seed" and declared.range is not None:  # the server takes any seed
            assert (bounds["Ge"].ge, bounds["Le"].le) == declared.range, name


def test_the_provider_option_lists_are_the_schemas():
    assert openai.EXTRAS == {
        "gpt-image-1": (
            "quality", "background", "moderation", "output_format", "output_compression",
        ),
        "dall-e-3": ("quality", "style"),
    }  # fmt: skip
    assert gemini.EXTRAS == ("aspect_ratio", "image_size")


def test_the_catalog_claims_no_capability_the_schema_denies_its_back_end():
    for spec in CATALOG.values():
        for name, claimed in (
            ("seed", spec.takes_seed),
            ("negative_prompt", spec.takes_negative_prompt),
            ("reference", spec.max_references > 0),
        ):
            assert schema.takes(spec, name) == claimed, (spec.id, name)


def test_the_panels_form_holds_only_request_fields():
    form = {f.name for f in dataclasses.fields(FormValues)}
    # size is width × height; count and the X/Y section's rows are the form's own
    assert form - set(FIELD_NAMES) == {"size", "count", "sweep"}


@pytest.mark.parametrize(
    ("name", "value", "normalised"),
    [
        ("width", 1024.0, 1024),
        ("steps", None, None),
        ("cfg_scale", 5, 5.0),
        ("seed", 2**63 - 1, 2**63 - 1),
        ("negative_prompt", "  ", None),
        ("lora", "", None),
        ("reference", None, ()),
    ],
)
def test_check_value_normalises(name, value, normalised):
    result = schema.check_value(name, value)
    assert result == normalised and type(result) is type(normalised)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("width", True, "Width must be a whole number, got True"),
        ("width", None, "Width must be a whole number, got None"),
        ("seed", 2**63, "The seed must be between 0 and 2**63 - 1"),
        ("ip_adapter_scale", "0.5", "IP-Adapter scale must be a number, got '0.5'"),
        ("cfg_scale", float("inf"), "CFG scale must be between 1.0 and 20.0, got inf"),
        ("negative_prompt", 5, "Negative prompt must be text, got 5"),
    ],
)
def test_check_value_refuses_in_words_naming_label_and_range(name, value, words):
    with pytest.raises(InvalidRequestError, match=words.replace("*", r"\*")):
        schema.check_value(name, value)
