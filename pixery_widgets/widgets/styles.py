"""The widgets' styles: the stylesheet each part loads, and the HTML snippets that use it.

Colours and sizes live in ``static/palette.css`` and the classes in
``static/widgets.css``; Python HTML only names classes. An anywidget loads its
sheet through ``_css``; the parts made of plain ipywidgets (the status line,
the LoRA picker, the image output) each carry a ``Styles`` child that does it
for them, so every part looks right on its own as well as in the panel.
"""

from __future__ import annotations

import html
from typing import Any

import anywidget
import ipywidgets as w

from ..core.palette import STATIC, stylesheet

__all__ = ["Styles", "error_box", "error_text", "muted"]


class Styles(anywidget.AnyWidget):
    """Loads the palette and the parts' classes into the page; shows nothing."""

    _esm = STATIC / "styles.js"
    _css = stylesheet("widgets.css")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(layout=w.Layout(display="none"), **kwargs)


def muted(text: str, *, small: bool = False) -> str:
    """A line of secondary text (a hint, a count, the elapsed time)."""
    size = " pixery-small" if small else ""
    return f'<span class="pixery-muted{size}">{html.escape(text)}</span>'


def error_text(text: str) -> str:
    """A line of text in the error colour (a batch's failures under its progress bar)."""
    return f'<span class="pixery-error-text">{html.escape(text)}</span>'


def error_box(title: str, message: str) -> str:
    """A failure in words where an image would be."""
    return (
        '<div class="pixery-error" role="alert">'
        f'<strong class="pixery-error-title">{html.escape(title)}</strong>'
        f"<br>{html.escape(message)}</div>"
    )
