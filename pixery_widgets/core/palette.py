"""The palette and the stylesheets, read from ``static/``, for widgets and plain HTML.

Colours have one home, ``static/palette.css``: it names each colour the package
shows (``--pixery-text``, ``--pixery-error``, …) as JupyterLab's theme variable
with one fallback, on any element of class ``pixery``. Widgets load it with their
own sheet through their ``_css``; HTML shown outside any widget (a batch's grid,
archive records) carries it in a ``<style>`` block. Everything else refers to
the names, never to a colour.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

__all__ = ["STATIC", "style_block", "stylesheet"]

#: The package's front-end files (``.css``, ``.js``).
STATIC = Path(__file__).resolve().parent.parent / "static"


_COMMENT = re.compile(r"/\*.*?\*/\s*", re.DOTALL)


@functools.cache
def _read(name: str) -> str:
    """A sheet without its comments (they are for readers of the file, not the page)."""
    return _COMMENT.sub("", (STATIC / name).read_text(encoding="utf-8")).strip()


def stylesheet(*names: str) -> str:
    """The palette followed by the named sheets of ``static/``, as one CSS text."""
    return "\n".join(_read(name) for name in ("palette.css", *names))


def style_block(*names: str) -> str:
    """``stylesheet(*names)`` as a ``<style>`` element, for HTML shown outside widgets."""
    return f"<style>{stylesheet(*names)}</style>"
