"""A Count above one: the panel's batch, as the panel shows it.

The panel runs such a count as a real batch (``start_batch``: the same
scheduling, archive and cancel as ``px.arun_batch``) on consecutive seeds.
``PanelBatch`` keeps no copy of the batch's state: its images, its failures in
words and its progress are read from the ``Batch`` whenever they are asked for.
What the panel adds is only the order it hands images over in (as they arrived,
each once it is archived, so its caption says where it was saved).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.errors import InvalidRequestError
from ..core.types import Generation
from .batch import Batch, JobFailure
from .progress import ProgressSnapshot
from .validation import MAX_SEED, RANDOM_SEED_RANGE

__all__ = ["MAX_COUNT", "PanelBatch", "batch_seeds", "check_count"]

#: Most images one press of Generate makes (the Count field's maximum).
MAX_COUNT = 64


def check_count(count: object) -> int:
    """The Count field: how many images, 1 to ``MAX_COUNT``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InvalidRequestError(
            f"Count must be a whole number from 1 to {MAX_COUNT}, got {count!r}."
        )
    return count


def batch_seeds(
    count: int, seed: int | None, *, takes_seed: bool, rng: random.Random | None = None
) -> list[int | None]:
    """Seeds for ``count`` images of one prompt: ``seed``, ``seed + 1``, ...

    Without a seed, one random base is drawn and the rest follow it, so every
    image can be made again from the seed in its caption. A model without seed
    control gets ``None`` for each (the back end varies them itself).
    """
    count = check_count(count)
    if not takes_seed:
        return [None] * count
    if seed is None:
        seed = (rng or random.SystemRandom()).randrange(RANDOM_SEED_RANGE - count + 1)
    if seed + count - 1 > MAX_SEED:
        raise InvalidRequestError(
            f"Seeds {seed} to {seed + count - 1} go past the largest seed (2**63 - 1); "
            "choose a smaller seed or fewer images."
        )
    return list(range(seed, seed + count))


class PanelBatch:
    """The batch one press of Generate started: ``total`` images asked for, and the
    ``batch`` once ``start_batch`` has checked and started it."""

    def __init__(self, total: int, *, redact: Callable[[str], str]) -> None:
        self.total = total
        self.batch: Batch | None = None
        self._redact = redact

    async def run(
        self,
        start: Callable[..., Awaitable[Batch]],
        prompt: str,
        model: str | list[str],
        seeds: list[int | None] | None,
        kwargs: dict[str, Any],
        *,
        on_progress: Callable[[], None],
    ) -> None:
        """Start the batch and wait for it to end; a refusal raises before any image.
        ``seeds`` is ``None`` for a sweep over seeds (``kwargs["vary"]`` has them).

        Cancelling this (the panel closed) cancels the batch too; what arrived stays.
        """
        try:
            self.batch = await start(
                prompt, model, seeds=seeds, progress=lambda _snap: on_progress(), **kwargs
            )
            on_progress()
            await self.batch.wait()
        except asyncio.CancelledError:
            if self.batch is not None:
                self.batch.cancel()
            raise

    # -- what the panel shows, read from the batch ---------------------------------------

    def images(self) -> list[Generation]:
        """Its images in the order they arrived, each once archived (all, once it ended)."""
        batch = self.batch
        if batch is None:
            return []
        out: list[Generation] = []
        for i in batch.arrival_order:
            result = batch.results[i]
            if isinstance(result, Generation):
                if batch.running and batch.archive is not None and result.id is None:
                    break  # still being saved: it (and those after it) come next time
                out.append(result)
            elif isinstance(result, JobFailure) and result.generation is not None:
                out.append(result.generation)  # arrived, but could not be archived
        return out

    def failures(self) -> list[JobFailure]:
        """Jobs that failed (a cancelled one is not a failure)."""
        batch = self.batch
        return [] if batch is None else [f for f in batch.failed if not f.cancelled]

    def failure_words(self) -> str | None:
        """``"2 of 8 failed: <why>; <why>"``, or ``None`` when nothing failed."""
        failures = self.failures()
        if not failures or self.batch is None:
            return None
        why: list[str] = []
        for failure in failures:
            text = self._redact(failure.error.message)
            if text not in why:
                why.append(text)
        more = f" (and {len(why) - 2} other reasons)" if len(why) > 2 else ""
        return f"{len(failures)} of {len(self.batch.jobs)} failed: {'; '.join(why[:2])}{more}"

    def note(self) -> str | None:
        """What a cancel left and the failures, in words; ``None`` if neither."""
        batch = self.batch
        if batch is None:
            return None
        parts = []
        if batch.snapshot().cancelled:
            made = len(batch.arrival_order)
            parts.append(f"Cancelled after {made} of {len(batch.jobs)} images.")
        failures = self.failure_words()
        if failures:
            parts.append(failures)
        return " ".join(parts) or None

    def snapshot(self, elapsed_s: float) -> ProgressSnapshot:
        """The batch's progress; before it has started, none of ``total`` done yet."""
        if self.batch is not None:
            snap = self.batch.snapshot()
            if snap.total:
                return snap
        return ProgressSnapshot(
            total=self.total, done=0, failed=0, running=0, elapsed_s=elapsed_s, cost_usd=0.0
        )

    def outcome(
        self, *, cancelled: bool = False, error: str | None = None
    ) -> tuple[str, str | None, str | None]:
        """(outcome, error, message) for the panel once the run is over.

        A cancel is said in ``note()`` under the progress bar, so the panel's
        message line is cleared (``""``) rather than repeating it.
        """
        batch = self.batch
        if batch is None:  # refused (or cancelled) before it started
            return ("cancelled" if cancelled else "failed"), error, None
        failures = self.failure_words()
        if cancelled or batch.snapshot().cancelled:
            return "cancelled", failures, ""
        if not self.images():
            return "failed", error or failures or "No image arrived.", None
        return "done", error or failures, None
