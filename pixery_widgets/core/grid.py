"""A compact HTML grid of thumbnails with captions, for batches and archive searches.

Only small JPEG thumbnails are embedded (never the full PNGs), so a grid of 50
images adds well under 2 MB to a saved notebook. It is plain HTML, shown
outside any widget, so it carries its styles in a ``<style>`` block (the palette
and ``static/grid.css``): JupyterLab's theme colours, light and dark alike. A
notebook reopened untrusted drops that block until it is trusted again; the
images and captions still show, one under the other.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from .images import data_url
from .palette import style_block

__all__ = ["GridItem", "figure_html", "grid_html"]


def figure_html(image: bytes, caption: str, *, max_width: str, gap: int = 0) -> str:
    """One picture with its caption (escaped here), for a notebook's rich output: a
    generation, a page of a contact sheet. Inline styles: no stylesheet travels with it."""
    text = html.escape(caption)
    return (
        f'<figure style="margin:0 0 {gap}px 0"><img src="{data_url(image)}" alt="{text}" '
        f'style="max-width:{max_width}"/><figcaption style="font-size:12px">{text}</figcaption>'
        "</figure>"
    )


@dataclass(frozen=True)
class GridItem:
    """One cell: a thumbnail (JPEG or PNG bytes) or, failing that, an error or a placeholder."""

    thumb: bytes | None
    caption: str
    title: str = ""
    footer: str = ""
    error: str | None = None


def _cell(item: GridItem, side: int) -> str:
    title = html.escape(item.title, quote=True)
    if item.thumb is not None:
        inner = f'<img src="{data_url(item.thumb)}" alt="{title}"/>'
    elif item.error is not None:
        inner = f'<div class="pixery-grid-error">{html.escape(item.error)}</div>'
    else:
        inner = '<div class="pixery-grid-muted">…</div>'
    footer = (
        f'<div class="pixery-grid-footer">{html.escape(item.footer)}</div>' if item.footer else ""
    )
    return (  # the side is the caller's: the one inline style, a size and not a colour
        f'<div class="pixery-grid-cell" style="width:{side}px" title="{title}">'
        f'<div class="pixery-grid-box" style="width:{side}px;height:{side}px">{inner}</div>'
        f"<div>{html.escape(item.caption)}</div>{footer}</div>"
    )


def grid_html(items: Sequence[GridItem], *, header: str = "", side: int = 160) -> str:
    """The grid as one HTML string, its styles included (see the module's docstring)."""
    cells = "".join(_cell(item, side) for item in items)
    head = f'<div class="pixery-grid-head">{html.escape(header)}</div>' if header else ""
    return (
        f'{style_block("grid.css")}<div class="pixery pixery-grid">{head}'
        f'<div class="pixery-grid-cells">{cells}</div></div>'
    )
