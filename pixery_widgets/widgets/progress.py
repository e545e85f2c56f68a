"""A batch's progress as an ipywidgets bar and label, in the cell that started it.

Updated through traits, which works from the event loop (unlike ``Output``
capture). The session layer calls it through ``use_notebook_reporter``.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable
from typing import Any

from ..session.progress import ProgressSnapshot

__all__ = ["WidgetProgress", "notebook_reporter", "show_on_bar"]


def show_on_bar(bar: Any, snapshot: ProgressSnapshot) -> None:
    """A batch's progress on an ``IntProgress``, for the cell's bar and the panel's alike:
    settled of total, blue while it runs, then green if every image came, amber if not."""
    with bar.hold_sync():
        bar.max = max(1, snapshot.total)
        bar.value = snapshot.settled
        if snapshot.finished:
            bar.bar_style = "success" if snapshot.done == snapshot.total else "warning"
        else:
            bar.bar_style = "info"


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
        show_on_bar(self.bar, snapshot)
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


def notebook_reporter() -> WidgetProgress | None:
    """A bar inside a kernel that renders widgets; ``None`` elsewhere (text then)."""
    return WidgetProgress() if _in_widget_kernel() else None
