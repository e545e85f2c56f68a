"""Planning a batch: its jobs in order, every check and the cost estimate, before any request.

Jobs are ordered prompt-major, then seed, then model, so a model comparison
shows the same prompt and seed side by side (a sweep's axes nest between seed
and model, ``session.sweep``). ``plan_batch`` refuses a bad batch before anything
is sent and builds the ``Batch``; ``last_batch()`` is the last one built.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ..archive import Archive, get_archive
from ..core import schema
from ..core.catalog import ModelSpec, resolve_model
from ..core.config import Settings, load_settings
from ..core.errors import CostLimitError, InvalidRequestError
from ..providers.servers import known_pool_models
from .batch import Batch
from .jobs import Job
from .ledger import LEDGER
from .sweep import Sweep, plan_sweep
from .sweep_checks import estimate_cost, validate_sweep
from .validation import as_references

__all__ = ["last_batch", "plan_batch", "plan_jobs", "with_plan_keywords"]

_last: Batch | None = None


def last_batch() -> Batch | None:
    """The batch started last in this session (also after an interrupt cut ``run_batch`` short)."""
    return _last


def _check_concurrency(concurrency: int | Mapping[str, int] | None) -> None:
    values = (
        [concurrency]
        if isinstance(concurrency, int)
        else list(concurrency.values())
        if isinstance(concurrency, Mapping)
        else []
    )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(
                f"concurrency must be a whole number of at least 1, got {value!r}."
            )


def plan_jobs(
    prompts: Sequence[str], specs: Sequence[ModelSpec], seeds: int | Iterable[int | None] | None
) -> list[Job]:
    """prompts × seeds × models, prompt-major, then seed, then model (``plan_sweep`` without axes).

    Models without seed control get ``seed=None`` (one variation per seed slot).
    """
    return list(plan_sweep(prompts, specs, seeds).jobs)


@schema.with_request_fields(exclude=("seed",))
async def plan_batch(
    prompts: str | Sequence[str],
    model: str | Sequence[str] = "animagine",
    *,
    seeds: int | Iterable[int | None] | None = None,
    concurrency: int | Mapping[str, int] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    archive: bool | Archive = True,
    max_cost_usd: float | None = None,
    settings: Settings | None = None,
    vary: Mapping[str, Iterable[Any]] | None = None,
    **params: Any,
) -> Batch:
    """Check everything and build the ``Batch`` without running it.

    Order of refusals, all before any image request: bad prompts, models, seeds
    or axes; the cost guard; then each model's request check (which may ask a
    self-hosted server for its LoRAs), each axis value and each image's request.
    """
    settings_given = settings is not None
    settings = settings if settings is not None else load_settings()
    _check_prompts(prompts)
    _check_concurrency(concurrency)
    if "seed" in params:
        raise InvalidRequestError("A batch takes seeds=, not seed= (e.g. seeds=[7] or seeds=4).")
    specs = _resolve_models(model, settings)
    sweep = plan_sweep(prompts, specs, seeds, vary, params)
    jobs = list(sweep.jobs)
    estimate = _estimate(jobs, specs, settings, params)
    _check_cost(len(jobs), estimate, max_cost_usd)
    params = await _checked_params(sweep, specs, settings, params)
    target = await _target_archive(archive, out_dir, settings)

    global _last
    batch = Batch(
        jobs,
        params=params,
        settings=settings,
        settings_given=settings_given,
        archive=target,
        concurrency=concurrency,
        estimated_cost_usd=estimate,
    )
    batch.sweep = sweep
    _last = batch
    return batch


def _check_prompts(prompts: str | Sequence[str]) -> None:
    """Refuse a batch without prompts, or with an empty one (numbered from 1)."""
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompt_list:
        raise InvalidRequestError("The batch has no prompts.")
    for n, prompt in enumerate(prompt_list, 1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError(
                f"Prompt {n} of the batch is empty; describe the image you want."
            )


def _resolve_models(model: str | Sequence[str], settings: Settings) -> list[ModelSpec]:
    """The batch's models, each once, in the order given (a pool's own models known too)."""
    model_names = [model] if isinstance(model, str) else list(model)
    if not model_names:
        raise InvalidRequestError("The batch has no model.")
    local = known_pool_models(settings) or ()
    return list(
        {s.id: s for s in (resolve_model(m, local_models=local) for m in model_names)}.values()
    )


def _estimate(
    jobs: Sequence[Job], specs: Sequence[ModelSpec], settings: Settings, params: Mapping[str, Any]
) -> float:
    """The batch's cost in dollars: list prices, plus self-hosted GPU time when it has a rate."""
    return round(
        estimate_cost(jobs, specs, params)
        + _gpu_estimate(settings, sum(j.provider == "selfhosted" for j in jobs)),
        6,
    )


def _check_cost(images: int, estimate: float, max_cost_usd: float | None) -> None:
    """The cost guard: refuse a batch estimated above ``max_cost_usd``, before any request."""
    if max_cost_usd is not None and estimate > max_cost_usd + 1e-9:
        raise CostLimitError(
            f"This batch of {images} images would cost about ${estimate:.3f}, above "
            f"max_cost_usd=${max_cost_usd:.3f}; nothing was sent. Raise the limit or make fewer images.",
            reason="over the cost limit",
        )


async def _checked_params(
    sweep: Sweep, specs: Sequence[ModelSpec], settings: Settings, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The request keywords every job shares, with references read; every cell checked."""
    params = dict(params)
    if params.get("reference") is not None:  # files read once for the batch, off the loop
        params["reference"] = await asyncio.to_thread(as_references, params["reference"])
    fields, options = schema.split(params)
    await validate_sweep(sweep, specs, settings, fields, options, keywords=_keywords())
    return params


async def _target_archive(
    archive: bool | Archive, out_dir: str | os.PathLike[str] | None, settings: Settings
) -> Archive | None:
    """Where the images go: none (``archive=False``), the one given, or ``out_dir``'s / the default."""
    if archive is False:
        return None
    if isinstance(archive, Archive):
        return archive
    return await asyncio.to_thread(get_archive, out_dir if out_dir is not None else True, settings)


def _gpu_estimate(settings: Settings, images: int) -> float:
    """Self-hosted images at SELFHOSTED_COST_PER_HOUR, each taking this session's mean time."""
    rate = settings.selfhosted_cost_per_hour
    return rate * images * LEDGER.seconds_per_selfhosted_image() / 3600 if rate else 0.0


@functools.cache
def _keywords() -> tuple[str, ...]:
    """The batch functions' keywords (``arun_batch``'s), offered as suggestions for a misspelt one."""
    from .batch_api import arun_batch  # the entry points are built on this module

    return schema.keywords_of(arun_batch)


F = TypeVar("F", bound=Callable[..., Any])


def with_plan_keywords(func: F) -> F:
    """Give a batch entry point ``plan_batch``'s signature, with its own ``progress`` after
    ``max_cost_usd``: the batch's keywords are declared once, on ``plan_batch``, and the
    entry points (``arun_batch``, ``start_batch``, ``run_batch``) pass them through."""
    planned = inspect.signature(plan_batch)
    progress = inspect.signature(func).parameters["progress"]
    params = list(planned.parameters.values())
    at = [p.name for p in params].index("max_cost_usd") + 1
    func.__signature__ = planned.replace(  # type: ignore[attr-defined]
        parameters=[*params[:at], progress, *params[at:]],
        return_annotation=inspect.signature(func).return_annotation,
    )
    return func
