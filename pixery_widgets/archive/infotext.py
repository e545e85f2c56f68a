"""The ``parameters`` text AUTOMATIC1111 writes, which most Stable Diffusion tools read.

As A1111 writes it: the prompt (a LoRA inline as ``<lora:NAME:WEIGHT>``, which
is how A1111 applies one and how "send to txt2img" restores it), then a line
``Negative prompt: …``, then one line of ``Key: value`` pairs in A1111's order
(``Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model``,
extras, ``Version``), a value with a comma, colon or quote JSON-quoted.

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

from ..core.types import DEFAULT_LORA_SCALE

__all__ = ["SELFHOSTED_SAMPLER", "a1111_parameters", "lora_tag"]

#: What A1111 calls the self-hosted server's sampler (diffusers' EulerAncestralDiscrete).
SELFHOSTED_SAMPLER = "Euler a"


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


def _settings(info: Mapping[str, Any]) -> list[tuple[str, object]]:
    sampler = info.get("sampler") or (
        SELFHOSTED_SAMPLER if info.get("provider") == "selfhosted" else None
    )
    fields: list[tuple[str, object]] = []
    if info.get("steps") is not None:
        fields.append(("Steps", info["steps"]))
    if sampler:
        fields.append(("Sampler", sampler))
    if info.get("cfg_scale") is not None:
        fields.append(("CFG scale", _number(float(info["cfg_scale"]))))
    if info.get("seed") is not None:
        fields.append(("Seed", info["seed"]))
    if info.get("width") and info.get("height"):
        fields.append(("Size", f"{info['width']}x{info['height']}"))
    fields.append(("Model", info.get("model") or ""))
    if info.get("reference_hash"):
        fields.append(("IP-Adapter reference", info["reference_hash"]))
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
    if info.get("steps") is not None:  # a settings line begins with Steps (see above)
        lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in _settings(info)))
    return "\n".join(lines)
