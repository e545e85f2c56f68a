"""The ``parameters`` text AUTOMATIC1111 writes, which most Stable Diffusion tools read.

Its layout is described in docs/backends.md ("The PNG text other tools read").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.types import DEFAULT_LORA_SCALE

__all__ = ["a1111_parameters"]


def _a1111_quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n"') else text


def _fmt_number(value: float) -> str:
    return f"{value:g}"


def a1111_parameters(info: Mapping[str, Any]) -> str:
    """The ``parameters`` text A1111, ComfyUI and Civitai read:

    ``prompt\\nNegative prompt: …\\nSteps: 28, CFG scale: 5, Seed: 7, Size: 1024x1024, Model: …``
    """
    lines = [str(info.get("prompt") or "")]
    if info.get("negative_prompt"):
        lines.append(f"Negative prompt: {info['negative_prompt']}")
    fields: list[tuple[str, object]] = []
    if info.get("steps") is not None:
        fields.append(("Steps", info["steps"]))
    if info.get("sampler"):
        fields.append(("Sampler", info["sampler"]))
    if info.get("cfg_scale") is not None:
        fields.append(("CFG scale", _fmt_number(float(info["cfg_scale"]))))
    if info.get("seed") is not None:
        fields.append(("Seed", info["seed"]))
    if info.get("width") and info.get("height"):
        fields.append(("Size", f"{info['width']}x{info['height']}"))
    fields.append(("Model", info.get("model") or ""))
    if info.get("lora"):
        scale = info.get("lora_scale")
        scale = DEFAULT_LORA_SCALE if scale is None else scale  # 0.0 is a real choice
        fields.append(("Lora", f"{info['lora']}:{_fmt_number(float(scale))}"))
    if info.get("reference_hash"):
        fields.append(("IP-Adapter reference", info["reference_hash"]))
    if info.get("provider") and info.get("provider") != "selfhosted":
        fields.append(("Provider", info["provider"]))
    fields.append(("Version", "pixery-widgets"))
    lines.append(", ".join(f"{k}: {_a1111_quote(v)}" for k, v in fields))
    return "\n".join(lines)
