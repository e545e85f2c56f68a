"""Local checks that run before anything is sent: a pure function of the inputs.

The ranges are the self-hosted server's own (docs/backends.md); checking them here
means a typo costs nothing and the message names the allowed values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..core.catalog import ModelSpec, resolve_model
from ..core.errors import InvalidRequestError, UnknownLoraError
from ..core.images import ReferenceLike, reference_to_bytes
from ..core.types import DEFAULT_IP_ADAPTER_SCALE, DEFAULT_LORA_SCALE, GenerationRequest

__all__ = ["MAX_SEED", "RANDOM_SEED_RANGE", "RANGES", "as_references", "build_request"]

#: The largest seed a request may carry.
MAX_SEED = 2**63 - 1
#: Seeds drawn at random (a batch's ``seeds=<count>``, the panel's empty Seed field)
#: lie in [0, 2**32), as in most SD tools.
RANDOM_SEED_RANGE = 2**32

#: (low, high) inclusive, as the self-hosted server validates them.
RANGES: dict[str, tuple[float, float]] = {
    "width": (512, 1536),
    "height": (512, 1536),
    "steps": (1, 50),
    "cfg_scale": (1.0, 20.0),
    "ip_adapter_scale": (0.0, 1.0),
    "lora_scale": (0.0, 1.5),
}

_LABELS = {
    "width": "Width",
    "height": "Height",
    "steps": "Steps",
    "cfg_scale": "CFG scale",
    "ip_adapter_scale": "IP-Adapter scale",
    "lora_scale": "LoRA scale",
}

_INT_FIELDS = {"width", "height", "steps"}


def _check_range(name: str, value: Any) -> Any:
    low, high = RANGES[name]
    label = _LABELS[name]
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise InvalidRequestError(f"{label} must be a whole number, got {value!r}.")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequestError(f"{label} must be a number, got {value!r}.")
        value = float(value)
        if math.isnan(value):
            raise InvalidRequestError(f"{label} must be a number, got NaN.")
    if not low <= value <= high:
        lo = int(low) if name in _INT_FIELDS else low
        hi = int(high) if name in _INT_FIELDS else high
        raise InvalidRequestError(f"{label} must be between {lo} and {hi}, got {value}.")
    return value


def as_references(reference: ReferenceLike | Sequence[ReferenceLike] | None) -> tuple[bytes, ...]:
    """One reference or several (paths, bytes, PIL images) → their bytes, each checked."""
    if reference is None:
        return ()
    if isinstance(reference, (list, tuple)):
        return tuple(reference_to_bytes(r) for r in reference)
    return (reference_to_bytes(reference),)


def build_request(
    prompt: str,
    model: str,
    *,
    negative_prompt: str | None = None,
    width: int = 1024,
    height: int = 1024,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int | None = None,
    reference: ReferenceLike | Sequence[ReferenceLike] | None = None,
    ip_adapter_scale: float = DEFAULT_IP_ADAPTER_SCALE,
    lora: str | None = None,
    lora_scale: float = DEFAULT_LORA_SCALE,
    local_models: Sequence[str] = (),
    server_loras: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> GenerationRequest:
    """Resolve the model and check every field; raise ``InvalidRequestError`` on the first bad one.

    ``server_loras`` is the server's LoRA list when known; a LoRA not in it is refused.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError("The prompt is empty; describe the image you want.")
    spec: ModelSpec = resolve_model(model, local_models=tuple(local_models))

    width = _check_range("width", width)
    height = _check_range("height", height)
    if steps is not None:
        steps = _check_range("steps", steps)
    if cfg_scale is not None:
        cfg_scale = _check_range("cfg_scale", cfg_scale)
    ip_adapter_scale = _check_range("ip_adapter_scale", ip_adapter_scale)
    lora_scale = _check_range("lora_scale", lora_scale)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidRequestError(f"The seed must be a whole number or None, got {seed!r}.")
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequestError(f"The seed must be between 0 and 2**63 - 1, got {seed}.")

    if negative_prompt is not None and not negative_prompt.strip():
        negative_prompt = None
    if negative_prompt is not None and not spec.takes_negative_prompt:
        raise InvalidRequestError(f"{spec.display_name} does not take a negative prompt.")

    references = as_references(reference)
    if references and spec.max_references == 0:
        raise InvalidRequestError(f"{spec.display_name} does not take reference images.")
    if len(references) > spec.max_references:
        raise InvalidRequestError(
            f"{spec.display_name} takes at most {spec.max_references} reference image(s), "
            f"got {len(references)}."
        )

    if lora is not None and not str(lora).strip():
        lora = None
    if lora is not None:
        if not spec.is_local:
            raise InvalidRequestError(
                f"LoRAs run on your own server only; {spec.display_name} does not take one."
            )
        if server_loras is not None and lora not in server_loras:
            listed = ", ".join(server_loras) if server_loras else "none"
            raise UnknownLoraError(
                f"The server has no LoRA named {lora!r}. Available LoRAs: {listed}."
            )

    return GenerationRequest(
        prompt=prompt,
        model=spec.id,
        provider=spec.provider,
        negative_prompt=negative_prompt,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg_scale,
        seed=seed,
        references=references,
        ip_adapter_scale=ip_adapter_scale,
        lora=lora,
        lora_scale=lora_scale,
        extra=dict(extra or {}),
    )
