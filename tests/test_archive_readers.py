"""The ``parameters`` text of every archived PNG, read by real Stable Diffusion readers.

sd-parsers and sd-prompt-reader read the saved files as users' tools do; a
small parser written here after A1111's own rules (the last line holds the
settings when it has three ``Key: value`` pairs or more; every other line is
stripped; a line starting ``Negative prompt:`` begins the negative prompt;
JSON-quoted values are unquoted) checks the round trip of any prompt text.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sd_parsers import ParserManager
from sd_prompt_reader.image_data_reader import ImageDataReader

from pixery_widgets.archive import Archive, a1111_parameters, add_text_chunks, read_text_chunks
from pixery_widgets.core.config import Settings
from pixery_widgets.core.types import Generation, GenerationRequest
from tests.test_archive import make_generation, png_bytes

_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, settings) as A1111's PNG Info reads them."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields = {k: json.loads(v) if v.startswith('"') else v for k, v in _PARAM.findall(last)}
    return "\n".join(prompt), "\n".join(negative), fields


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "arch", settings=Settings())


def cloud_generation() -> Generation:
    request = GenerationRequest(
        prompt='a lighthouse, at dusk: "golden hour"',
        model="gemini-2.5-flash-image",
        provider="gemini",
        negative_prompt="blurry, text",
    )
    return Generation(
        png_bytes=png_bytes(), seed=None, model=request.model, provider="gemini",
        params={"width": 1024, "height": 1024}, elapsed_s=2.0, cost_usd=0.039, request=request,
    )  # fmt: skip


SELFHOSTED = {
    "with a LoRA": dict(
        prompt='1girl, solo, "smiling": yes\nsecond line, 猫', lora="detail_tweaker",
        lora_scale=0.6,
    ),
    "without a LoRA": dict(prompt="a fox in snow, (masterpiece:1.2)"),
}  # fmt: skip


@pytest.mark.parametrize("case", SELFHOSTED)
def test_both_readers_read_a_selfhosted_image_as_generated(archive, case):
    rec = archive.save(make_generation(seed=4242, width=832, height=1216, **SELFHOSTED[case]))
    kw = SELFHOSTED[case]
    prompt = kw["prompt"] + (f" <lora:{kw['lora']}:{kw['lora_scale']:g}>" if "lora" in kw else "")

    info = ParserManager().parse(rec.path)
    assert info is not None, read_text_chunks(rec.path.read_bytes())["parameters"]
    (sampler,) = info.samplers
    assert sampler.name == "Euler a"
    assert sampler.parameters == {"steps": "28", "cfg_scale": "5", "seed": "4242"}
    assert info.full_prompt == prompt and info.full_negative_prompt == "lowres"
    assert sampler.model.name == "animagine"
    assert info.metadata["Size"] == "1024x1024"  # what the server said it drew

    reader = ImageDataReader(str(rec.path))
    assert reader.tool == "A1111 webUI"
    assert (reader.positive, reader.negative) == (prompt, "lowres")
    assert reader.parameter == {
        "model": "animagine", "sampler": "Euler a", "seed": "4242", "cfg": "5", "steps": "28",
        "size": "1024x1024",
    }  # fmt: skip

    assert parse_a1111(read_text_chunks(rec.path.read_bytes())["parameters"])[:2] == (
        prompt,
        "lowres",
    )


def test_a_cloud_image_shows_its_prompts_right_and_invents_no_sampler(archive):
    rec = archive.save(cloud_generation())
    text = read_text_chunks(rec.path.read_bytes())["parameters"]
    assert text == 'a lighthouse, at dusk: "golden hour"\nNegative prompt: blurry, text'
    reader = ImageDataReader(str(rec.path))
    assert (reader.positive, reader.negative) == (
        'a lighthouse, at dusk: "golden hour"',
        "blurry, text",
    )
    assert set(reader.parameter.values()) == {None}  # nothing claimed that is not known
    assert parse_a1111(text) == ('a lighthouse, at dusk: "golden hour"', "blurry, text", {})
    assert ParserManager().parse(rec.path) is None  # sd-parsers needs a sampler: none is made up
    info = json.loads(read_text_chunks(rec.path.read_bytes())["pixery"])
    assert (info["model"], info["provider"], info["width"]) == (rec.model, "gemini", 1024)


def test_the_settings_line_is_in_a1111_order_with_a_numbered_version():
    from importlib.metadata import version

    text = a1111_parameters(
        {
            "prompt": "x",
            "negative_prompt": "y",
            "steps": 20,
            "cfg_scale": 7.5,
            "seed": 3,
            "width": 512,
            "height": 768,
            "model": "pony",
            "provider": "selfhosted",
            "lora": "a",
            "lora_scale": 0.0,
            "reference_hash": "abc",
        }
    )
    assert text.splitlines() == [
        "x <lora:a:0>",
        "Negative prompt: y",
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 3, Size: 512x768, Model: pony, "
        f"IP-Adapter reference: abc, Version: v{version('pixery-widgets')}",
    ]


# -- any prompt text round-trips ---------------------------------------------------------------

_TRICKY = st.sampled_from(
    [
        ",",
        ":",
        '"',
        "\n",
        " ",
        "\\",
        "(word:1.2)",
        "Steps: 3, Sampler: x, CFG scale: 2",
        "猫",
        "é",
        "<lora:other:1>",
        "Seed: 9",
        "\t",
        "\r\n",
        "Negative prompt",
    ]
)
_TEXT = st.lists(st.one_of(_TRICKY, st.text(max_size=8)), max_size=12).map("".join)


def _representable(text: str) -> bool:
    """The format has no escape for a line that itself begins ``Negative prompt:``."""
    return not any(
        line.strip().startswith("Negative prompt:") for line in text.replace("\r", "\n").split("\n")
    )


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines_stripped(text: str) -> str:
    """What A1111's reader gives back of the lines it wrote: each one stripped."""
    return "\n".join(line.strip() for line in _lf(text).split("\n"))


def _with_lora(prompt: str, lora: str | None) -> str:
    """The prompt as written: the LoRA's tag after it, a space between."""
    tag = f"<lora:{lora}:0.8>"
    if lora is None or tag in _lf(prompt):
        return prompt
    return f"{_lf(prompt).rstrip()} {tag}" if prompt.strip() else tag


_MODEL = st.text(alphabet=st.sampled_from('abc-_./:, "é'), min_size=1, max_size=12).map(str.strip)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=_TEXT.filter(_representable),
    negative=_TEXT.filter(_representable),
    model=_MODEL.filter(bool),
    lora=st.none() | st.sampled_from(["detail_tweaker", "add-detail_xl"]),
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 150),
    cfg=st.floats(0, 30, allow_nan=False).map(lambda f: round(f, 2)),
)
def test_any_prompt_text_round_trips_through_the_a1111_reader(
    prompt, negative, model, lora, seed, steps, cfg
):
    info = {"prompt": prompt, "negative_prompt": negative, "model": model, "seed": seed,
            "steps": steps, "cfg_scale": cfg, "width": 832, "height": 1216,
            "provider": "selfhosted", "lora": lora, "lora_scale": 0.8}  # fmt: skip
    text = a1111_parameters(info)
    got_prompt, got_negative, fields = parse_a1111(text)
    # The reader strips the whole text first: the prompt's leading blank lines go.
    assert got_prompt == _lines_stripped(_lf(_with_lora(prompt, lora)).lstrip())
    assert got_negative == (_lines_stripped(negative) if negative else "")
    assert fields["Steps"] == str(steps) and fields["Sampler"] == "Euler a"
    assert float(fields["CFG scale"]) == cfg and fields["Seed"] == str(seed)
    assert fields["Size"] == "832x1216" and fields["Model"] == model
    assert fields["Version"].startswith("v")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=_TEXT.filter(lambda t: "Negative prompt:" not in t),
    negative=_TEXT.filter(lambda t: "Negative prompt:" not in t),
)
def test_any_prompt_text_round_trips_through_sd_parsers(prompt, negative):
    """sd-parsers splits prompt from negative at "Negative prompt:" anywhere, and strips
    each as a whole (not line by line)."""
    from io import BytesIO

    from PIL import Image

    info = {"prompt": prompt, "negative_prompt": negative, "model": "animagine", "seed": 1,
            "steps": 28, "cfg_scale": 5.0, "width": 1024, "height": 1024,
            "provider": "selfhosted"}  # fmt: skip
    png = add_text_chunks(png_bytes(size=(4, 4)), {"parameters": a1111_parameters(info)})
    with Image.open(BytesIO(png)) as img:
        parsed = ParserManager().parse(img)
    assert parsed is not None
    assert parsed.full_prompt == _lf(prompt).strip()
    assert parsed.full_negative_prompt == _lf(negative).strip()
    assert parsed.samplers[0].parameters == {"steps": "28", "cfg_scale": "5", "seed": "1"}
