"""The ``parameters`` text AUTOMATIC1111 writes, which most Stable Diffusion tools read.

As A1111 writes it: the prompt (a LoRA inline as ``<lora:NAME:WEIGHT>``, which
is how A1111 applies one and how "send to txt2img" restores it), then a line
``Negative prompt: …``, then one line of ``Key: value`` pairs in A1111's order
(``Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model``,
extras, ``Version``), a value with a comma, colon or quote JSON-quoted.

The keys are the request schema's (``a1111`` of each field, read from the
field's column): A1111's own settings go in A1111's order before the model,
every other key after it, in the schema's order, as A1111 writes its extras.
So a field declared with an A1111 key is written with nothing added here.

Only what is known is written. The self-hosted server samples with diffusers'
Euler ancestral scheduler, A1111's ``Euler a``. Model and LoRA hashes are not
known here and are left out, as A1111 allows.

A cloud API reports no sampler, steps or guidance, and none is invented to
please a reader. Readers find the settings line by its leading ``Steps:``
(sd-prompt-reader, Civitai), so a line without one would be read as part of
the negative prompt: a cloud image's text is its prompt and negative prompt
only, which every reader shows right (sd-parsers, which needs a sampler, skips
it). Its model, size, seed and provider are in the ``pixery`` JSON beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..core import schema
from ..core.types import DEFAULT_LORA_SCALE

__all__ = ["A1111_KEYS", "SELFHOSTED_SAMPLER", "a1111_parameters", "lora_tag"]

#: What A1111 calls the self-hosted server's sampler (diffusers' EulerAncestralDiscrete).
SELFHOSTED_SAMPLER = "Euler a"

#: Each A1111 key of the request schema → the fields written under it (Size: width, height).
A1111_KEYS: dict[str, tuple[schema.RequestField, ...]] = {}
for _f in schema.FIELDS:
    if _f.a1111 is not None:
        A1111_KEYS[_f.a1111] = (*A1111_KEYS.get(_f.a1111, ()), _f)

#: Keys with a place of their own: the negative prompt's line, the LoRA's tag in the prompt.
NEGATIVE, LORA = "Negative prompt", "Lora"
#: A1111's settings before the model, in its order (the sampler is the server's, not asked).
BEFORE_MODEL = ("Steps", "Sampler", "CFG scale", "Seed", "Size")


@lru_cache(maxsize=1)
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"v{version('pixery-widgets')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "pixery-widgets"


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n"') else text


def _number(value: float) -> str:
    return f"{value:g}"


def lora_tag(name: str, scale: float | None) -> str:
    """A1111's inline LoRA tag; a missing scale is the default (0 is a real choice)."""
    weight = DEFAULT_LORA_SCALE if scale is None else float(scale)
    return f"<lora:{name}:{_number(weight)}>"


def _prompt(info: Mapping[str, Any]) -> str:
    prompt = str(info.get("prompt") or "").replace("\r\n", "\n").replace("\r", "\n")
    if info.get("lora"):
        tag = lora_tag(str(info["lora"]), info.get("lora_scale"))
        if tag not in prompt:
            prompt = f"{prompt.rstrip()} {tag}" if prompt.strip() else tag
    return prompt


def _written(info: Mapping[str, Any]) -> dict[str, str]:
    """The schema's ``Key: value`` settings that ``info`` has a value for, as A1111 writes
    them (a number with ``%g``, fields sharing a key joined as ``WxH``), in the schema's order."""
    out: dict[str, str] = {}
    for key, group in A1111_KEYS.items():
        values = [info.get(str(f.column)) for f in group]
        if key in (NEGATIVE, LORA) or not all(schema.is_set(v) for v in values):
            continue
        out[key] = "x".join(
            _number(float(v)) if f.type is float else str(v)
            for f, v in zip(group, values, strict=True)
        )
    return out


def _settings(info: Mapping[str, Any], written: dict[str, str]) -> list[tuple[str, object]]:
    sampler = info.get("sampler") or (
        SELFHOSTED_SAMPLER if info.get("provider") == "selfhosted" else None
    )
    extras = dict(written)
    fields: list[tuple[str, object]] = []
    for key in BEFORE_MODEL:
        value = sampler if key == "Sampler" else extras.pop(key, None)
        if value:
            fields.append((key, value))
    fields.append(("Model", info.get("model") or ""))
    fields += extras.items()
    if info.get("provider") and info.get("provider") != "selfhosted":
        fields.append(("Provider", info["provider"]))
    fields.append(("Version", _version()))
    return fields


def a1111_parameters(info: Mapping[str, Any]) -> str:
    """The ``parameters`` text A1111, ComfyUI, Civitai, sd-parsers and sd-prompt-reader read:

    ``prompt <lora:x:0.8>\\nNegative prompt: …\\nSteps: 28, Sampler: Euler a, CFG scale: 5,
    Seed: 7, Size: 1024x1024, Model: …, Version: v0.1.0``
    """
    lines = [_prompt(info)]
    negative = str(info.get("negative_prompt") or "").replace("\r\n", "\n").replace("\r", "\n")
    if negative:
        lines.append(f"Negative prompt: {negative}")
    written = _written(info)
    if "Steps" in written:  # a settings line begins with Steps (see above)
        lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in _settings(info, written)))
    return "\n".join(lines)
