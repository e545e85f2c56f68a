"""The batch entry points: ``arun_batch``, its sync twin ``run_batch``, ``start_batch``.

Each plans the batch (``batch_plan``: every check before any request) and runs it
(``Batch.run_all``, ``Batch.start``); ``last_batch()`` gives back the last one, also
after an interrupt. Their keywords are ``plan_batch``'s (declared there once, request
fields from the schema) and ``progress``; ``with_plan_keywords`` shows them in ``help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.sync import run_sync
from .batch_plan import last_batch, plan_batch, with_plan_keywords
from .batch_run import run_interruptible

if TYPE_CHECKING:
    from .batch import Batch

__all__ = ["arun_batch", "last_batch", "run_batch", "start_batch"]


@with_plan_keywords
async def arun_batch(*args: Any, progress: Any = True, **keywords: Any) -> Batch:
    """Make one image per (prompt, seed, model) and return the ``Batch`` when all are settled.

    ``seeds``: ``None`` → one job per prompt, the back end picks the seed;
    an int ``n`` → ``n`` random seeds per prompt, drawn now and recorded (the
    same seeds for every model); an iterable → exactly those seeds.
    ``model`` may be a list for a comparison: jobs are prompt-major, then seed,
    then model. ``concurrency``: an int for every back end, or
    ``{"fal": 8, "selfhosted": 1}``; default 1 per self-hosted server, 4 per
    cloud provider (each server of a pool gets its own). ``max_cost_usd`` refuses a
    batch whose estimate (list prices; self-hosted GPU time at
    SELFHOSTED_COST_PER_HOUR) is above it (``CostLimitError``), before any request.
    ``out_dir`` archives somewhere else than ``PIXERY_ARCHIVE_DIR``; ``archive=False``
    keeps images in memory only. ``progress``: True (a bar), False, or a callable taking
    a ``ProgressSnapshot``. The other keywords are ``agenerate``'s request fields (see the
    signature; ``seeds`` instead of ``seed``) and provider options, checked for every model
    before anything is sent.

    ``vary`` sweeps any of those fields: ``{"cfg_scale": [4, 6, 8], "lora": [None,
    "pixel_art"]}`` makes one image per combination, also crossed with prompts, seeds
    and models; ``"size"`` takes (width, height) pairs. Results are nested prompt →
    seed → the vary= axes in the order given → model; every combination is checked
    and priced first (``session.sweep``). ``batch.grid()`` draws the contact sheet.

    A failed job does not stop the others; see ``.failed`` and ``retry_failed()``.
    """
    batch = await plan_batch(*args, **keywords)
    return await batch.run_all(progress)


@with_plan_keywords
async def start_batch(*args: Any, progress: Any = True, **keywords: Any) -> Batch:
    """Check and start a batch in the background; returns the running ``Batch`` at once.

    In a notebook the cell ends immediately, so ``batch.cancel()`` works from
    another cell; ``await batch`` waits for it. Same arguments as ``arun_batch``.
    """
    batch = await plan_batch(*args, **keywords)
    batch.start(progress)
    return batch


@with_plan_keywords
def run_batch(*args: Any, progress: Any = True, **keywords: Any) -> Batch:
    """Sync twin of ``arun_batch``; in a kernel too. Interrupting the kernel cancels
    what is in flight and keeps every arrived image (``px.last_batch()`` holds them)."""
    batch = run_sync(plan_batch(*args, **keywords))
    return run_interruptible(batch, batch.run_all(progress))
