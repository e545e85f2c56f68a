"""A sweep's price and its checks: every value, then every image's request, before anything is sent.

The first refusal is named by its place on the axes (``placed``), so a typo in one
value of a hundred-image sweep costs nothing and says which value it was.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.catalog import ModelSpec
from ..core.config import Settings
from ..core.errors import InvalidRequestError
from .sweep import Sweep, axis_overrides, placed
from .validation import build_request

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["estimate_cost", "validate_sweep"]


def _side(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):  # refused by the checks that follow
        return 1024


def estimate_cost(
    jobs: Sequence[Job], specs: Sequence[ModelSpec], params: Mapping[str, Any]
) -> float:
    """The list price of every job at its own size (a size axis changes a cloud model's price)."""
    by_id = {s.id: s for s in specs}
    total = 0.0
    for job in jobs:
        own = dict(job.overrides)
        width = _side(own.get("width", params.get("width", 1024)))
        height = _side(own.get("height", params.get("height", 1024)))
        total += by_id[job.model].estimated_cost(width, height)
    return round(total, 6)


def _check_one(
    prompt: str, spec: ModelSpec, seed: Any, kwargs: Mapping[str, Any], context: dict[str, Any]
) -> None:
    from ..providers import get_provider

    request = build_request(
        prompt,
        spec.id,
        seed=seed,
        local_models=context["local"],
        server_loras=context["loras"] if spec.is_local else None,
        extra=context["extra"],
        **kwargs,
    )
    get_provider(request.provider).validate(request)


def _check_values(
    sweep: Sweep,
    specs: Sequence[ModelSpec],
    fields: Mapping[str, Any],
    context: dict[str, Any],
    names: Sequence[str],
) -> None:
    """Each value of the named vary= axes on its own, with each model; names the first bad one."""
    prompt = sweep.jobs[0].prompt
    for name in names:
        axis = sweep.axis(name)
        for i, value in enumerate(axis.values):
            own = dict(axis_overrides(axis, value)) if name not in ("prompt", "seed") else {}
            for spec in specs:
                try:
                    _check_one(
                        value if name == "prompt" else prompt,
                        spec,
                        value if name == "seed" else None,
                        {**fields, **own},
                        context,
                    )
                except InvalidRequestError as exc:
                    more = f" with {spec.id}" if len(specs) > 1 else ""
                    raise placed(exc, axis.where(i) + more) from None


async def validate_sweep(
    sweep: Sweep,
    specs: Sequence[ModelSpec],
    settings: Settings,
    fields: Mapping[str, Any],
    extra: Mapping[str, Any],
    *,
    keywords: Collection[str] | None = None,
) -> None:
    """Everything checkable, before anything is sent; the first refusal says where it is.

    First each model with the batch's own settings (a LoRA asks the server's ``/loras``,
    a cloud model wants its key); then each value of each vary= axis with each model,
    and each image's whole request; last, a LoRA axis against the server's list (one
    ``/loras``, asked only when everything else is right).
    """
    from ..providers.selfhosted import client_for
    from ..providers.status import known_models
    from .generate import prepare_request

    for spec in specs:
        first = next(j for j in sweep.jobs if j.model == spec.id)
        await prepare_request(
            first.prompt,
            spec.id,
            settings,
            seed=first.seed,
            extra=dict(extra) or None,
            keywords=keywords,
            **fields,
        )
    local = known_models(settings.selfhosted_url) or ()
    context: dict[str, Any] = {"local": local, "loras": None, "extra": dict(extra) or None}
    _check_values(sweep, specs, fields, context, sweep.order)
    by_id = {s.id: s for s in specs}
    for job in sweep.jobs:
        try:
            _check_one(
                job.prompt, by_id[job.model], job.seed, {**fields, **dict(job.overrides)}, context
            )
        except InvalidRequestError as exc:
            where = f"image {job.index + 1} of {len(sweep.jobs)} ({sweep.where(job)})"
            raise placed(exc, where) from None
    if "lora" in sweep.order and any(sweep.axis("lora").values):
        local_specs = [s for s in specs if s.is_local]
        if local_specs:
            context["loras"] = await client_for(settings).loras()
            _check_values(sweep, local_specs, fields, context, ["lora"])
