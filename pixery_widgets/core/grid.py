"""A compact HTML grid of thumbnails with captions, for batches and archive searches.

Only small JPEG thumbnails are embedded (never the full PNGs), so a grid of 50
images adds well under 2 MB to a saved notebook. Colours come from JupyterLab's
CSS variables with fallbacks, so the grid reads in light and dark themes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["GridItem", "grid_html"]


@dataclass(frozen=True)
class GridItem:
    """One cell: a thumbnail (JPEG or PNG bytes) or, failing that, an error or a placeholder."""

    thumb: bytes | None
    caption: str
    title: str = ""
    footer: str = ""
    error: str | None = None


_CELL = (
    "display:flex;flex-direction:column;gap:2px;width:{side}px;"
    "font-size:11px;line-height:1.25;color:var(--jp-ui-font-color1,#333)"
)
_BOX = (
    "width:{side}px;height:{side}px;display:flex;align-items:center;justify-content:center;"
    "border-radius:4px;background:var(--jp-layout-color2,#eee);overflow:hidden"
)
_ERROR = (
    "padding:6px;text-align:center;color:var(--jp-error-color1,#c62828);"
    "font-size:11px;overflow:hidden"
)
_MUTED = "color:var(--jp-ui-font-color2,#777)"


def _mime(data: bytes) -> str:
    return "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"


def _cell(item: GridItem, side: int) -> str:
    title = html.escape(item.title, quote=True)
    if item.thumb is not None:
        data = base64.b64encode(item.thumb).decode("ascii")
        inner = (
            f'<img src="data:{_mime(item.thumb)};base64,{data}" alt="{title}" '
            'style="max-width:100%;max-height:100%;object-fit:contain"/>'
        )
    elif item.error is not None:
        inner = f'<div style="{_ERROR}">{html.escape(item.error)}</div>'
    else:
        inner = f'<div style="{_MUTED}">…</div>'
    footer = (
        f'<div style="{_MUTED};overflow:hidden;text-overflow:ellipsis;white-space:nowrap">'
        f"{html.escape(item.footer)}</div>"
        if item.footer
        else ""
    )
    return (
        f'<div style="{_CELL.format(side=side)}" title="{title}">'
        f'<div style="{_BOX.format(side=side)}">{inner}</div>'
        f"<div>{html.escape(item.caption)}</div>{footer}</div>"
    )


def grid_html(items: Sequence[GridItem], *, header: str = "", side: int = 160) -> str:
    """The grid as one HTML string (inline styles only: it survives a saved notebook)."""
    cells = "".join(_cell(item, side) for item in items)
    head = (
        f'<div style="font-size:12px;margin-bottom:4px;{_MUTED}">{html.escape(header)}</div>'
        if header
        else ""
    )
    return (
        f'<div class="pixery-grid">{head}'
        f'<div style="display:flex;flex-wrap:wrap;gap:8px">{cells}</div></div>'
    )
