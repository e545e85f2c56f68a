"""What the archive records about one image: the JSON in its ``pixery`` chunk and its row.

One function builds it from a ``Generation`` (``generation_info``); one reads the
typed column values back from it (``fields_from_info``), for a save and for a
reindex alike.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from typing import Any

from ..core.types import Generation

__all__ = ["fields_from_info", "generation_info", "new_id", "slug", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-")[:40] or "image"


def _effective(generation: Generation, request: Mapping[str, Any], key: str) -> Any:
    """What the back end says it used (server defaults filled in), else what was asked."""
    value = generation.params.get(key) if isinstance(generation.params, dict) else None
    return value if value is not None else request.get(key)


def generation_info(
    generation: Generation, *, gen_id: str, created_at: dt.datetime, batch_id: str | None
) -> dict[str, Any]:
    """Everything the archive records about one image, as JSON-able values.

    ``request`` is exactly what was asked (with the seed the back end used),
    so regenerating replays it; the top-level fields are what was used.
    """
    if generation.request is not None:
        request = generation.request.describe()
    else:
        request = {k: v for k, v in generation.params.items() if isinstance(k, str)}
        request.setdefault("model", generation.model)
        request.setdefault("provider", generation.provider)
    request["seed"] = generation.seed if generation.seed is not None else request.get("seed")
    info: dict[str, Any] = {
        "id": gen_id,
        "created_at": created_at.isoformat(),
        "prompt": request.get("prompt") or generation.prompt,
        "negative_prompt": _effective(generation, request, "negative_prompt"),
        "model": generation.model,
        "provider": generation.provider,
        "seed": generation.seed,
        "width": _effective(generation, request, "width"),
        "height": _effective(generation, request, "height"),
        "steps": _effective(generation, request, "steps"),
        "cfg_scale": _effective(generation, request, "cfg_scale"),
        "sampler": generation.params.get("sampler") if generation.params else None,
        "lora": request.get("lora"),
        "lora_scale": request.get("lora_scale") if request.get("lora") else None,
        "reference_hash": request.get("reference_hash"),
        "elapsed_s": round(generation.elapsed_s, 3),
        "cost_usd": generation.cost_usd,
        "batch_id": batch_id,
        "request": request,
        "server_parameters": generation.params,
        "format": 1,
    }
    return info


def _num(info: Mapping[str, Any], key: str, kind: type) -> Any:
    value = info.get(key)
    try:
        return kind(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def fields_from_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The typed column values of a record, from the JSON the PNG carries."""
    return {
        "id": str(info["id"]),
        "prompt": str(info.get("prompt") or ""),
        "negative_prompt": info.get("negative_prompt"),
        "model": str(info.get("model") or ""),
        "provider": str(info.get("provider") or ""),
        "seed": _num(info, "seed", int),
        "width": _num(info, "width", int),
        "height": _num(info, "height", int),
        "steps": _num(info, "steps", int),
        "cfg_scale": _num(info, "cfg_scale", float),
        "lora": info.get("lora"),
        "lora_scale": _num(info, "lora_scale", float),
        "reference_hash": info.get("reference_hash"),
        "elapsed_s": _num(info, "elapsed_s", float),
        "cost_usd": _num(info, "cost_usd", float),
        "batch_id": info.get("batch_id"),
    }
