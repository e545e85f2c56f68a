"""Progress of a batch, shown where the user is looking, in one wording.

In a kernel with ipywidgets: the widgets layer's bar (``widgets/progress.py``),
wired in by the package. Elsewhere: one line on stderr, rewritten in place. The batch logic
knows nothing of this; it calls an observer with a ``ProgressSnapshot``, whose
``summary()`` is the line every display shows (the panel's too).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

__all__ = [
    "ProgressReporter",
    "ProgressSnapshot",
    "TextProgress",
    "format_duration",
    "make_reporter",
    "use_notebook_reporter",
]


@dataclass(frozen=True)
class ProgressSnapshot:
    """Where a run stands; ``eta_s`` is None until something has finished.

    ``failed`` counts jobs that failed, ``cancelled`` those a cancel stopped (not failures).
    """

    total: int
    done: int
    failed: int
    running: int
    elapsed_s: float
    cost_usd: float
    finished: bool = False
    cancelled: int = 0

    @property
    def settled(self) -> int:
        return self.done + self.failed + self.cancelled

    @property
    def eta_s(self) -> float | None:
        if self.finished or self.settled == 0:
            return None
        remaining = self.total - self.settled
        return self.elapsed_s / self.settled * remaining

    def summary(self) -> str:
        """``3 of 10 done · 1 failed · 2 cancelled · 00:08 elapsed · about 00:12 left · $0.120``."""
        parts = [f"{self.done} of {self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        parts.append(f"{format_duration(self.elapsed_s)} elapsed")
        eta = self.eta_s
        if eta is not None:
            parts.append(f"about {format_duration(eta)} left")
        parts.append(f"${self.cost_usd:.3f}")
        return " · ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressReporter(Protocol):
    def __call__(self, snapshot: ProgressSnapshot) -> None: ...

    def close(self) -> None: ...


class TextProgress:
    """``[#####-----] 12 of 40 done · 1 failed · …`` on one line, rewritten in place.

    The bar a script gets with ``progress=True``: it writes to ``stream`` (stderr
    unless given), the place the user asked to see progress, not a log.
    """

    def __init__(
        self, stream: IO[str] | None = None, *, width: int = 24, min_interval: float = 0.1
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._last_write = 0.0
        self._last_len = 0
        self._pending: ProgressSnapshot | None = None

    def line(self, snap: ProgressSnapshot) -> str:
        filled = int(self.width * snap.settled / snap.total) if snap.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        return f"[{bar}] {snap.summary()}"

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        now = time.monotonic()
        self._pending = snapshot
        if snapshot.finished or now - self._last_write >= self.min_interval:
            self._write(snapshot)

    def _write(self, snapshot: ProgressSnapshot) -> None:
        text = self.line(snapshot)
        pad = " " * max(0, self._last_len - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._last_len = len(text)
        self._last_write = time.monotonic()
        self._pending = None

    def close(self) -> None:
        if self._pending is not None:
            self._write(self._pending)
        if self._last_len:
            self.stream.write("\n")
            self.stream.flush()
            self._last_len = 0


#: Where a notebook's progress display comes from. The session layer loads no
#: widgets; the package wires the widgets layer's bar in with ``use_notebook_reporter``.
def _notebook_reporter() -> ProgressReporter | None:
    return None


def use_notebook_reporter(factory: Callable[[], ProgressReporter | None]) -> None:
    """Set what ``progress=True`` shows in a kernel (``None`` from it: text on stderr)."""
    global _notebook_reporter
    _notebook_reporter = factory


def make_reporter(progress: bool | ProgressReporter | Callable[[ProgressSnapshot], None]) -> Any:
    """The reporter for ``progress=``: False → none, True → widget or text, a callable → itself."""
    if progress is False or progress is None:
        return None
    if progress is True:
        try:
            reporter = _notebook_reporter()
        except Exception:  # a front end without widgets: fall back to text
            reporter = None
        return reporter if reporter is not None else TextProgress()
    return progress
