"""Progress of a batch, shown where the user is looking.

In a kernel with ipywidgets: an ``IntProgress`` bar and an HTML label, updated
through their traits (which works from the event loop, unlike ``Output``
capture). Elsewhere: one line on stderr, rewritten in place. The batch logic
knows nothing of this; it calls an observer with a ``ProgressSnapshot``.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

__all__ = [
    "ProgressReporter",
    "ProgressSnapshot",
    "TextProgress",
    "WidgetProgress",
    "format_duration",
    "make_reporter",
]


@dataclass(frozen=True)
class ProgressSnapshot:
    """Where a run stands; ``eta_s`` is None until something has finished."""

    total: int
    done: int
    failed: int
    running: int
    elapsed_s: float
    cost_usd: float
    finished: bool = False

    @property
    def settled(self) -> int:
        return self.done + self.failed

    @property
    def eta_s(self) -> float | None:
        if self.finished or self.settled == 0:
            return None
        remaining = self.total - self.settled
        return self.elapsed_s / self.settled * remaining

    def summary(self) -> str:
        parts = [f"{self.done}/{self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{format_duration(self.elapsed_s)} elapsed")
        eta = self.eta_s
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
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
    """``[#####-----] 12/40 done · 1 failed · 00:05 elapsed · ETA 00:12 · $0.000`` on one line."""

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


class WidgetProgress:
    """An ipywidgets bar and label, displayed in the cell that started the batch."""

    def __init__(self, display: Callable[[Any], Any] | None = None) -> None:
        import ipywidgets as w

        self.bar = w.IntProgress(value=0, min=0, max=1, bar_style="info")
        self.label = w.HTML(value="starting…")
        self.box = w.HBox([self.bar, self.label])
        if display is None:
            from IPython.display import display as ipy_display

            display = ipy_display
        display(self.box)

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        self.bar.max = max(1, snapshot.total)
        self.bar.value = snapshot.settled
        if snapshot.finished:
            self.bar.bar_style = "success" if not snapshot.failed else "warning"
        self.label.value = html.escape(snapshot.summary())

    def close(self) -> None:
        pass


def _in_widget_kernel() -> bool:
    """True inside an IPython kernel where ipywidgets can render."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:
        return False
    if ip is None or getattr(ip, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def make_reporter(progress: bool | ProgressReporter | Callable[[ProgressSnapshot], None]) -> Any:
    """The reporter for ``progress=``: False → none, True → widget or text, a callable → itself."""
    if progress is False or progress is None:
        return None
    if progress is True:
        if _in_widget_kernel():
            try:
                return WidgetProgress()
            except Exception:  # a front end without widgets: fall back to text
                return TextProgress()
        return TextProgress()
    return progress
