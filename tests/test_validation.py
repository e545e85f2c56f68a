"""Bad input is refused before anything is sent, with a sentence naming what is allowed."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pixery_widgets import InvalidRequestError, UnknownLoraError, UnknownModelError
from pixery_widgets.core.catalog import CATALOG, resolve_model
from pixery_widgets.session.validation import build_request


def png_bytes(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_an_empty_prompt_is_refused(prompt):
    with pytest.raises(InvalidRequestError, match="prompt is empty"):
        build_request(prompt, "animagine")


def test_an_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError) as info:
        build_request("a cat", "stable-diffusion-9")
    assert "animagine" in str(info.value) and "gemini-flash" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("width", 511, "Width must be between 512 and 1536"),
        ("height", 1537, "Height must be between 512 and 1536"),
        ("steps", 0, "Steps must be between 1 and 50"),
        ("steps", 51, "Steps must be between 1 and 50"),
        ("cfg_scale", 0.5, "CFG scale must be between 1.0 and 20.0"),
        ("cfg_scale", 20.5, "CFG scale must be between 1.0 and 20.0"),
        ("ip_adapter_scale", 1.1, "IP-Adapter scale must be between 0.0 and 1.0"),
        ("lora_scale", 1.6, "LoRA scale must be between 0.0 and 1.5"),
        ("lora_scale", -0.1, "LoRA scale must be between 0.0 and 1.5"),
        ("width", 1024.5, "Width must be a whole number"),
        ("steps", "20", "Steps must be a whole number"),
        ("cfg_scale", float("nan"), "CFG scale must be a number"),
        ("seed", -1, "seed must be between"),
        ("seed", 1.5, "seed must be a whole number"),
    ],
)
def test_out_of_range_values_are_refused_with_the_allowed_range(field, value, words):
    with pytest.raises(InvalidRequestError, match=words):
        build_request("a cat", "animagine", **{field: value})


@given(
    width=st.integers(512, 1536),
    height=st.integers(512, 1536),
    steps=st.integers(1, 50) | st.none(),
    cfg=st.floats(1.0, 20.0) | st.none(),
    lora_scale=st.floats(0.0, 1.5),
)
def test_every_value_inside_the_ranges_is_accepted(width, height, steps, cfg, lora_scale):
    request = build_request(
        "a cat",
        "pony",
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg,
        lora_scale=lora_scale,
    )
    assert (request.width, request.height, request.steps) == (width, height, steps)


def test_a_lora_the_server_does_not_list_is_refused_naming_the_listed_ones():
    with pytest.raises(UnknownLoraError, match="Available LoRAs: detail_tweaker, pixel_art"):
        build_request(
            "a cat", "animagine", lora="nope", server_loras=("detail_tweaker", "pixel_art")
        )
    with pytest.raises(UnknownLoraError, match="Available LoRAs: none"):
        build_request("a cat", "animagine", lora="nope", server_loras=())
    ok = build_request("a cat", "animagine", lora="pixel_art", server_loras=("pixel_art",))
    assert ok.lora == "pixel_art"


def test_a_lora_on_a_cloud_model_is_refused():
    with pytest.raises(InvalidRequestError, match="LoRAs run on your own server"):
        build_request("a cat", "gemini-flash", lora="pixel_art")


def test_negative_prompt_only_where_the_model_takes_one():
    assert build_request("a cat", "noobai", negative_prompt="blurry").negative_prompt == "blurry"
    with pytest.raises(InvalidRequestError, match="does not take a negative prompt"):
        build_request("a cat", "gpt-image", negative_prompt="blurry")


def test_references_from_bytes_pil_and_path_with_model_limits(tmp_path):
    raw = png_bytes()
    path = tmp_path / "ref.png"
    path.write_bytes(raw)
    image = Image.open(io.BytesIO(raw))
    for ref in (raw, path, str(path), image):
        request = build_request("a cat", "animagine", reference=ref)
        assert len(request.references) == 1
    with pytest.raises(InvalidRequestError, match="at most 1 reference"):
        build_request("a cat", "animagine", reference=[raw, raw])
    with pytest.raises(InvalidRequestError, match="does not take reference images"):
        build_request("a cat", "dall-e-3", reference=raw)
    assert len(build_request("a cat", "gemini-flash", reference=[raw] * 10).references) == 10
    with pytest.raises(InvalidRequestError, match="not a readable image"):
        build_request("a cat", "animagine", reference=b"not an image")
    with pytest.raises(InvalidRequestError, match="Could not read the reference image"):
        build_request("a cat", "animagine", reference=tmp_path / "missing.png")


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("gemini-flash", "gemini-flash"),
        ("gemini-2.5-flash-image", "gemini-flash"),
        ("nano-banana", "gemini-flash"),
        ("GPT-IMAGE-1", "gpt-image"),
        ("fal-ai/flux/schnell", "flux-schnell"),
        ("animagine", "animagine"),
    ],
)
def test_aliases_and_api_ids_resolve_to_one_model(name, model_id):
    assert resolve_model(name).id == model_id


def test_a_model_a_server_listed_resolves_even_if_the_package_never_heard_of_it():
    spec = resolve_model("mystery-xl", local_models=("mystery-xl",))
    assert spec.is_local and spec.takes_seed


def test_catalog_has_prices_and_capabilities_for_every_cloud_model():
    for spec in CATALOG.values():
        if spec.is_local:
            assert spec.estimated_cost() == 0.0
        else:
            assert spec.estimated_cost() > 0, spec.id
    assert CATALOG["gemini-flash"].max_references == 10
    assert CATALOG["z-image-turbo"].estimated_cost(1024, 1024) == pytest.approx(0.005 * 1.048576)
