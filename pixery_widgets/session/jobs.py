"""A batch's jobs and failures: one ``Job`` per image, one ``JobFailure`` per image that
did not come, and the words they are shown in.

They sit apart from ``Batch`` because the batch, its planning (``batch_plan``), the pool's
scheduler, the sweep and the panel all hold jobs and failures without needing a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import Settings
from ..core.errors import PixeryError
from ..core.types import Generation, caption_line

__all__ = ["CANCELLED", "Job", "JobFailure", "Result", "cancelled_error", "unexpected_error"]


@dataclass(frozen=True)
class Job:
    """One image to make: a prompt, a model and a seed (``None``: the back end picks).

    A sweep's job also carries the request keywords its cell sets (``overrides``) and
    its index on each of the sweep's axes (``coords``).
    """

    index: int
    prompt: str
    model: str
    provider: str
    seed: int | None
    overrides: tuple[tuple[str, Any], ...] = ()
    coords: tuple[int, ...] = ()

    def label(self) -> str:
        own = (f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.overrides)
        return f"#{self.index + 1} {caption_line(self.model, self.seed, *own)}"


@dataclass(frozen=True)
class JobFailure:
    """A job that did not give an archived image, and why.

    ``generation`` is set when the image arrived (and was paid for) but could
    not be archived; ``retry_failed()`` then only retries the saving.
    """

    job: Job
    error: PixeryError
    generation: Generation | None = None

    @property
    def reason(self) -> str:
        """A few words: "cancelled", "connection refused", "timed out", ..."""
        return self.error.reason or self.error.message

    @property
    def cancelled(self) -> bool:
        """Stopped by a cancel or an interrupt, not failed (``retry_failed()`` resumes it)."""
        return self.reason == CANCELLED

    def __repr__(self) -> str:
        return f"JobFailure({self.job.label()!r}, reason={self.reason!r}, error={self.error.message!r})"


#: A job's slot in ``Batch.results``: its image, why not, or ``None`` while it is pending.
Result = Generation | JobFailure | None


#: The reason of a job that a cancel (or an interrupt) stopped.
CANCELLED = "cancelled"


def cancelled_error() -> PixeryError:
    """What a job that a cancel or an interrupt stopped fails with (``retry_failed()`` resumes it)."""
    return PixeryError(
        "Cancelled before it finished; retry_failed() runs it again.", reason=CANCELLED
    )


def unexpected_error(exc: BaseException, settings: Settings) -> PixeryError:
    """A bug's exception as a ``PixeryError`` in words, secrets redacted, the original as cause."""
    err = PixeryError(
        settings.redact(f"Unexpected error: {type(exc).__name__}: {exc}"), reason="unexpected error"
    )
    err.__cause__ = exc
    return err
