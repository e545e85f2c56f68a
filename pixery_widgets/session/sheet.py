"""Contact sheets: a sweep's images on a labelled grid, light to show, archived with the sweep.

``batch.grid(x="cfg_scale", y="lora_scale")`` puts one image per cell, the x axis's
values along the columns and the y axis's down the rows, each labelled with the
field and the value (a Prompt S/R axis by its word, a prompt shortened). A failed
cell is a labelled blank with its reason; one not made yet says so. There is one
sheet per value of ``z``. Axes not named are taken from those that vary (the vary=
axes in the order given, then model, prompt and seed): the first fills x, the next
y, and any left over make more sheets, as z does.

The sheets shown are light (cells at most ``DISPLAY_CELL`` px, each sheet at most
``DISPLAY_PIXELS``); ``.save(path)`` draws them again at full resolution. Each is
archived (``archive.sheets``) with JSON that holds the sweep and, for every cell,
its image's record id.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from ..archive.files import THUMB_SIDE, write_atomic
from ..archive.sheets import save_sheet, with_sheet_json
from ..core.errors import ArchiveError, InvalidRequestError
from ..core.grid import figure_html
from ..core.types import Generation
from .sheet_draw import BLANK, FAIL, Layout, draw_labels, draw_note, fit, fit_size
from .sheet_plan import Cell, SheetPlan, cell_of, picture_of, plan_sheet

if TYPE_CHECKING:
    from .batch import Batch

__all__ = [
    "DISPLAY_CELL",
    "DISPLAY_PIXELS",
    "LIGHT_PNG_BYTES",
    "Cell",
    "ContactSheet",
    "contact_sheet",
]

log = logging.getLogger(__name__)

#: Most pixels of a sheet as shown in a notebook (a 10 × 10 sweep of 1024² images included).
DISPLAY_PIXELS = 4_000_000
#: Longest side of a cell as shown.
DISPLAY_CELL = 512
#: A sheet shown in a notebook as PNG up to this size, as JPEG above it.
LIGHT_PNG_BYTES = 1_000_000
SHEET_KIND = "pixery-contact-sheet"


def _native(g: Generation) -> tuple[int, int]:
    width, height = g.params.get("width"), g.params.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    return g.size


def _decode_fit(g: Generation, thumb: bytes | None, box: tuple[int, int]) -> Image.Image:
    """The image fitted to its cell: from the batch's thumbnail when that is big enough
    (a large sweep as shown), else decoded from its PNG."""
    if thumb is not None:
        with Image.open(io.BytesIO(thumb)) as small:
            if all(a >= b for a, b in zip(small.size, fit_size(_native(g), box), strict=True)):
                small.load()
                return fit(small, box)
    with Image.open(io.BytesIO(g.png_bytes)) as img:
        img.load()
        return fit(img, box)


def _pictures(
    gens: Mapping[int, Generation], thumbs: Mapping[int, bytes], box: tuple[int, int]
) -> dict[int, Image.Image]:
    """Each image fitted to the cell, in a few threads (decoding a PNG dominates)."""
    if not gens:
        return {}
    workers = max(1, min(4, os.cpu_count() or 1, len(gens)))
    with ThreadPoolExecutor(workers, thread_name_prefix="pixery-sheet") as pool:
        fitted = pool.map(lambda i: _decode_fit(gens[i], thumbs.get(i), box), gens)
        return dict(zip(gens, fitted, strict=True))


class ContactSheet:
    """A batch's images on labelled grids: ``.images`` (as shown), ``.save(path)`` (full size).

    Shows inline as one light image: its PNG, or a JPEG when the PNG passes
    ``LIGHT_PNG_BYTES`` (several sheets: as HTML, one after the other). ``.paths``
    are the archived copies, ``.meta`` their JSON, ``.cell(col, row)`` which job and
    record each cell holds.
    """

    def __init__(self, batch: Batch, plan: SheetPlan, *, display: bool = True) -> None:
        self.batch = batch
        self._plan = plan
        self.x, self.y, self.page_axes = plan.x, plan.y, plan.pages
        self.cells: list[list[Cell]] = [
            [cell_of(batch, c, r, i) for r, row in enumerate(grid) for c, i in enumerate(row)]
            for grid in plan.grids
        ]
        self.paths: list[Path] = []
        self.meta: list[dict[str, Any]] = []
        self.archive_error: str | None = None
        self._png: dict[int, bytes] = {}
        self._jpeg: dict[int, bytes] = {}
        indices = sorted({i for grid in plan.grids for row in grid for i in row})
        self._gens = {i: g for i in indices if (g := picture_of(batch, i)) is not None}
        sizes = [_native(g) for g in self._gens.values()]
        self.native_cell = (
            (max(s[0] for s in sizes), max(s[1] for s in sizes)) if sizes else (512, 512)
        )
        self._display = display
        self.layout = self._layout(self._display_scale() if display else 1.0)
        self.images = self._draw(self.layout)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        where = f", archived in {self.paths[0].parent}" if self.paths else ""
        axes = " × ".join(a.name for a in (self.x, self.y) if a is not None) or "one image"
        return f"ContactSheet({axes}, {len(self)} sheet(s), {self.layout.size[0]}×{self.layout.size[1]}{where})"

    # -- layout and drawing ----------------------------------------------------------------

    def _layout(self, scale: float) -> Layout:
        cell = (
            max(1, round(self.native_cell[0] * scale)),
            max(1, round(self.native_cell[1] * scale)),
        )
        titles = [self._plan.page_title(k) for k in range(len(self._plan.grids))]
        return Layout.make(
            cell,
            cols=self._plan.cols,
            rows=self._plan.rows,
            col_labels=[self.x.title(i) for i in range(len(self.x))] if self.x else [],
            row_labels=[self.y.title(i) for i in range(len(self.y))] if self.y else [],
            titled=any(titles),
        )

    def _display_scale(self) -> float:
        cw, ch = self.native_cell
        cells = self._plan.cols * self._plan.rows
        scale = min(
            1.0, DISPLAY_CELL / max(cw, ch), math.sqrt(0.9 * DISPLAY_PIXELS / (cells * cw * ch))
        )
        if max(cw, ch) * scale < 1.25 * THUMB_SIDE:  # small cells: the batch's thumbnails
            scale = min(scale, THUMB_SIDE / max(cw, ch))
        for _ in range(4):  # the label bands take their share too
            width, height = self._layout(scale).size
            if width * height <= DISPLAY_PIXELS:
                break
            scale *= math.sqrt(DISPLAY_PIXELS / (width * height)) * 0.99
        return scale

    def _draw(self, layout: Layout) -> list[Image.Image]:
        small = self._display and max(layout.cell) <= THUMB_SIDE
        thumbs = self.batch.thumbnails if small else {}  # made by the batch for its own grid
        pictures = _pictures(self._gens, thumbs, layout.cell)
        sheets = []
        for k, cells in enumerate(self.cells):
            sheet = Image.new("RGB", layout.size, (255, 255, 255))
            draw = ImageDraw.Draw(sheet)
            draw_labels(draw, layout, self._plan.page_title(k))
            for cell in cells:
                box = layout.box(cell.col, cell.row)
                picture = pictures.get(cell.job)
                if picture is not None:
                    w, h = picture.size
                    left = box[0] + (layout.cell[0] - w) // 2
                    top = box[1] + (layout.cell[1] - h) // 2
                    sheet.paste(picture, (left, top))
                elif cell.status == "failed":
                    draw_note(
                        draw, layout, box, FAIL, ["failed", cell.reason or "", cell.message or ""]
                    )
                else:
                    words = "cancelled" if cell.status == "cancelled" else "not made yet"
                    draw_note(draw, layout, box, BLANK, [words])
            sheets.append(sheet)
        return sheets

    def box(self, col: int, row: int) -> tuple[int, int, int, int]:
        """Where a cell is on the sheets as shown: (left, top, right, bottom)."""
        return self.layout.box(col, row)

    def picture_box(self, col: int, row: int, page: int = 0) -> tuple[int, int, int, int] | None:
        """Where a cell's image is pasted on the sheets as shown (None: a blank cell)."""
        g = self._gens.get(self.cell(col, row, page).job)
        if g is None:
            return None
        w, h = fit_size(_native(g), self.layout.cell)
        left, top = self.box(col, row)[:2]
        left += (self.layout.cell[0] - w) // 2
        top += (self.layout.cell[1] - h) // 2
        return left, top, left + w, top + h

    def cell(self, col: int, row: int, page: int = 0) -> Cell:
        return self.cells[page][row * self._plan.cols + col]

    # -- files -----------------------------------------------------------------------------

    def png(self, page: int = 0) -> bytes:
        """A sheet as shown, as PNG bytes (made once; this is the archived copy)."""
        if page not in self._png:
            buf = io.BytesIO()
            self.images[page].save(buf, format="PNG", compress_level=1)
            self._png[page] = buf.getvalue()
        return self._png[page]

    def jpeg(self, page: int = 0, quality: int = 88) -> bytes:
        """A sheet as shown, as JPEG bytes (made once)."""
        if page not in self._jpeg:
            buf = io.BytesIO()
            self.images[page].save(buf, format="JPEG", quality=quality)
            self._jpeg[page] = buf.getvalue()
        return self._jpeg[page]

    def shown(self, page: int = 0) -> tuple[str, bytes]:
        """(MIME type, bytes) a notebook keeps of a sheet: its PNG when that is light
        (``LIGHT_PNG_BYTES``), else a JPEG of it (photographs make heavy PNGs)."""
        png = self.png(page)
        return (
            ("image/png", png) if len(png) <= LIGHT_PNG_BYTES else ("image/jpeg", self.jpeg(page))
        )

    def full(self) -> ContactSheet:
        """The same sheets drawn again with every image at its own size (not archived)."""
        return ContactSheet(self.batch, self._plan, display=False)

    def save(self, path: str | os.PathLike[str], *, full: bool = True) -> list[Path]:
        """Write the sheets as PNG, with their JSON, at full resolution unless ``full=False``:
        ``path`` for one, ``<stem>-1.png``, ``<stem>-2.png``… for several. Returns the paths."""
        target = Path(path).expanduser()
        images = self.full().images if full else self.images
        written = []
        for k, image in enumerate(images):
            out = target
            if len(images) > 1:
                out = target.with_name(f"{target.stem}-{k + 1}{target.suffix or '.png'}")
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            meta = self.meta[k] if k < len(self.meta) else self.describe(k)
            data, _ = with_sheet_json(buf.getvalue(), meta, self.batch.settings.redact)
            try:
                write_atomic(out, data)
            except OSError as exc:
                raise ArchiveError(
                    f"Could not save the contact sheet to {out}: {exc.strerror or exc}."
                ) from None
            written.append(out)
        return written

    def describe(self, page: int = 0) -> dict[str, Any]:
        """The JSON of one sheet: the sweep, the axes, and each cell's job and record."""
        batch, plan = self.batch, self._plan
        sweep = batch.sweep
        assert sweep is not None
        cells = []
        for cell in self.cells[page]:
            job = batch.jobs[cell.job]
            values = {
                a.name: a.labels[job.coords[k]] for k, a in enumerate(sweep.axes) if len(a) > 1
            }
            cells.append(
                {
                    **cell.__dict__,
                    "prompt": job.prompt,
                    "model": job.model,
                    "seed": job.seed,
                    "values": values,
                }
            )
        return {
            "kind": SHEET_KIND,
            "version": 1,
            "batch_id": batch.id,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "page": page + 1,
            "pages": len(self.cells),
            "title": plan.page_title(page),
            "x": plan.x.describe() if plan.x else None,
            "y": plan.y.describe() if plan.y else None,
            "z": [
                {**a.describe(), "index": i}
                for a, i in zip(plan.pages, plan.page_values[page], strict=True)
            ],
            "sweep": sweep.describe(),
            "params": {k: v for k, v in batch.params.items() if k != "reference"},
            "shown": {"size": list(self.layout.size), "cell": list(self.layout.cell)},
            "cells": cells,
        }

    def _archive(self) -> None:
        archive = self.batch.archive
        if archive is None:
            return
        for k in range(len(self.images)):
            meta = self.describe(k)
            self.meta.append(meta)
            try:
                path = save_sheet(
                    archive.root,
                    self.batch.id,
                    self._plan.page_stem(k),
                    self.png(k),
                    meta,
                    redact=self.batch.settings.redact,
                )
            except ArchiveError as exc:
                self.archive_error = exc.message
                log.warning("contact sheet not archived: %s", exc.message)
                return
            self.paths.append(path)

    # -- display ---------------------------------------------------------------------------

    def _repr_png_(self) -> bytes | None:
        """One light sheet shows as its PNG (exactly one of these answers, so a saved
        notebook holds each sheet once)."""
        mime, data = self.shown(0)
        return data if len(self.images) == 1 and mime == "image/png" else None

    def _repr_jpeg_(self) -> bytes | None:
        mime, data = self.shown(0)
        return data if len(self.images) == 1 and mime == "image/jpeg" else None

    def _repr_html_(self) -> str | None:
        """Several sheets show one after the other, each titled with its z value."""
        if len(self.images) == 1:
            return None
        figures = [
            figure_html(self.shown(k)[1], self._plan.page_title(k), max_width="100%", gap=12)
            for k in range(len(self.images))
        ]
        return "<div>" + "".join(figures) + "</div>"


def contact_sheet(
    batch: Batch,
    x: str | None = None,
    y: str | None = None,
    z: str | None = None,
    *,
    archive: bool = True,
) -> ContactSheet:
    """``batch.grid``: draw the sheets as shown and archive them beside the batch's images."""
    if batch.sweep is None:
        raise InvalidRequestError(
            "This batch was not planned by run_batch; it has no axes to draw."
        )
    sheet = ContactSheet(batch, plan_sheet(batch.sweep, x, y, z))
    if archive:
        sheet._archive()
    return sheet
