"""The self-hosted server's answers, read: pure parsers, tolerant of extra fields and
strict about the ones used.

Kept apart from the client (``selfhosted``) because they are the contract with
the server's JSON and change with it, not with how it is reached; and because the
``/generate`` answer is megabytes, read off the event loop in a worker thread
(``generation_from_answer``), where the checked image becomes a ``Generation``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..core.errors import BadResponseError
from ..core.images import check_image_bytes, decode_base64_image, split_base64_field
from ..core.types import Generation, GenerationRequest, HealthInfo, LocalModelInfo
from ._base import OnImage, parse_json
from .in_flight import gpu_cost

__all__ = [
    "generation_from_answer",
    "parse_generate",
    "parse_health",
    "parse_loras",
    "parse_models",
    "read_generate_answer",
]


def _require_dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadResponseError(f"The server's {what} answer is not a JSON object.")
    return data


def _opt_number(data: dict[str, Any], key: str) -> float | None:
    """A finite number, or None (JSON allows 1e999, NaN and integers too big for a float)."""
    value = data.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


_HEALTH_KEYS = {
    "status",
    "current_model",
    "available_models",
    "ip_adapter_loaded",
    "cuda_available",
    "gpu_name",
    "vram_allocated_gb",
    "idle_seconds",
    "idle_timeout_minutes",
}


def parse_health(data: Any) -> HealthInfo:
    """``/health`` JSON → ``HealthInfo``; unknown extra fields are kept, not refused."""
    data = _require_dict(data, "/health")
    status = data.get("status")
    if not isinstance(status, str):
        raise BadResponseError("The server's /health answer has no 'status'.")
    models = data.get("available_models")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise BadResponseError("The server's /health answer has no list of 'available_models'.")
    return HealthInfo(
        status=status,
        current_model=_opt_str(data, "current_model"),
        available_models=tuple(models),
        ip_adapter_loaded=data.get("ip_adapter_loaded") is True,
        cuda_available=data.get("cuda_available") is True,
        gpu_name=_opt_str(data, "gpu_name"),
        vram_allocated_gb=_opt_number(data, "vram_allocated_gb"),
        idle_seconds=_opt_number(data, "idle_seconds"),
        idle_timeout_minutes=_opt_number(data, "idle_timeout_minutes"),
        extra={k: v for k, v in data.items() if k not in _HEALTH_KEYS},
    )


def parse_models(data: Any) -> dict[str, LocalModelInfo]:
    """``/models`` JSON → name → ``LocalModelInfo``; entries that are not objects are skipped."""
    data = _require_dict(data, "/models")
    models = data.get("models")
    if not isinstance(models, dict):
        raise BadResponseError("The server's /models answer has no 'models' object.")
    current = data.get("current")
    out: dict[str, LocalModelInfo] = {}
    for name, info in models.items():
        if not isinstance(name, str) or not isinstance(info, dict):
            continue
        steps = info.get("default_steps")
        out[name] = LocalModelInfo(
            name=name,
            description=info.get("description") if isinstance(info.get("description"), str) else "",
            downloaded=info.get("downloaded") is not False,
            loaded=info.get("loaded") is True or (isinstance(current, str) and current == name),
            default_cfg=_opt_number(info, "default_cfg"),
            default_steps=int(steps)
            if isinstance(steps, int) and not isinstance(steps, bool)
            else None,
        )
    return out


def parse_loras(data: Any) -> tuple[str, ...]:
    """``/loras`` JSON → the LoRA stems."""
    data = _require_dict(data, "/loras")
    loras = data.get("loras")
    if not isinstance(loras, list) or not all(isinstance(x, str) for x in loras):
        raise BadResponseError("The server's /loras answer has no list of 'loras'.")
    return tuple(loras)


def parse_generate(data: Any) -> tuple[bytes, int | None, dict[str, Any]]:
    """``/generate`` JSON → (image bytes, seed, parameters); the image is checked to decode.

    An ``image`` that is bytes was base64-decoded already, straight from the answer
    (``read_generate_answer``): it is checked the same way.
    """
    data = _require_dict(data, "/generate")
    image = data.get("image")
    if isinstance(image, bytes):
        check_image_bytes(image, provider="selfhosted", label="your server")
    else:
        image = decode_base64_image(image, provider="selfhosted", label="your server")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadResponseError(
            f"The server's /generate answer has a seed that is not a number: {seed!r}."
        )
    params = data.get("parameters")
    return image, seed, dict(params) if isinstance(params, dict) else {}


def read_generate_answer(body: bytes, *, where: str) -> Any:
    """The ``/generate`` answer's bytes → its JSON for ``parse_generate``.

    The image's base64 is nearly all of it (4 MB for a 3 MB PNG), so when it can be
    (``split_base64_field``) it is decoded straight from the body, and the JSON holds the
    bytes; otherwise the whole is parsed, for the same result or the same error.
    """
    split = split_base64_field(body, "image")
    if split is None:
        return parse_json(body, where=where)
    image, data = split
    data["image"] = image
    return data


# -- the /generate answer, in a worker thread ------------------------------------------


def generation_from_answer(
    body: bytes,
    where: str,
    request: GenerationRequest,
    started: float,
    on_image: OnImage | None,
    cost_per_hour: float | None = None,
) -> Generation:
    """The ``/generate`` answer's bytes → a checked ``Generation``, handed to ``on_image``
    (worker thread: parsing MBs of JSON would stall the event loop)."""
    image, seed, params = parse_generate(read_generate_answer(body, where=where))
    elapsed = time.perf_counter() - started
    generation = Generation(
        png_bytes=image,
        seed=seed if seed is not None else request.seed,
        model=request.model,
        provider="selfhosted",
        params=params or request.describe(),
        elapsed_s=elapsed,
        cost_usd=gpu_cost(elapsed, cost_per_hour),
        request=request,
    )
    if on_image is not None:
        on_image(generation)
    return generation
