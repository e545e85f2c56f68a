"""What the archive records about one image: the JSON in its ``pixery`` chunk and its row.

One function builds it from a ``Generation`` (``generation_info``); one reads the
typed column values back from it (``fields_from_info``), for a save and for a
reindex alike. The request's part of both is the request schema's columns
(``schema.REQUEST_COLUMNS``), so a new field is recorded with nothing written here.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from typing import Any

from ..core import schema as request_schema
from ..core.types import Generation
from .schema import REQUEST_COLUMNS, stored_type

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


def _request_columns(generation: Generation, request: Mapping[str, Any]) -> dict[str, Any]:
    """Each request column's value, as used: a field that needs another (``lora_scale``
    needs ``lora``) is None without it. ``request`` is ``GenerationRequest.describe()``,
    which holds each field under its column's name."""
    out = {str(f.column): _effective(generation, request, str(f.column)) for f in REQUEST_COLUMNS}
    for f in REQUEST_COLUMNS:
        if f.needs is not None:
            needed = request_schema.field(f.needs)
            have = out[needed.column] if needed.column else request.get(needed.name)
            if not request_schema.is_set(have):
                out[str(f.column)] = None
    return out


def generation_info(
    generation: Generation,
    *,
    gen_id: str,
    created_at: dt.datetime,
    batch_id: str | None,
    parent_id: str | None = None,
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
        **_request_columns(generation, request),
        "model": generation.model,
        "provider": generation.provider,
        "sampler": generation.params.get("sampler") if generation.params else None,
        "elapsed_s": round(generation.elapsed_s, 3),
        "cost_usd": generation.cost_usd,
        "batch_id": batch_id,
        "parent_id": parent_id,
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


def _column_value(f: request_schema.RequestField, info: Mapping[str, Any]) -> Any:
    """A request column's value as the index holds it (what cannot be read is None)."""
    kind, value = stored_type(f), info.get(str(f.column))
    if f.default is ...:  # the prompt: never NULL
        return str(value or "")
    if kind is str:
        return None if value is None else str(value)
    return _num(info, str(f.column), kind)


def fields_from_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The typed column values of a record, from the JSON the PNG carries."""
    return {
        "id": str(info["id"]),
        **{str(f.column): _column_value(f, info) for f in REQUEST_COLUMNS},
        "model": str(info.get("model") or ""),
        "provider": str(info.get("provider") or ""),
        "elapsed_s": _num(info, "elapsed_s", float),
        "cost_usd": _num(info, "cost_usd", float),
        "batch_id": info.get("batch_id"),
        "parent_id": str(info["parent_id"]) if info.get("parent_id") else None,
    }
