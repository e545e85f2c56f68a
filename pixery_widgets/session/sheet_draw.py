"""Drawing a contact sheet: its geometry, its labels, and the cells that hold no image.

Text uses Pillow's own scalable font (``ImageFont.load_default(size=...)``, Pillow
10.1 and later with FreeType), sized to the cells so that the labels stay readable
on a sheet as shown and at full resolution alike. Positions are computed here, not
through text anchors, so the bitmap font of a Pillow without FreeType works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

__all__ = ["BLANK", "FAIL", "PAPER", "Layout", "draw_labels", "draw_note", "fit", "fit_size"]

PAPER = (255, 255, 255)
INK = (33, 33, 33)
MUTED = (97, 97, 97)
BLANK = (236, 236, 236)
FAIL = (253, 234, 234)
FAIL_INK = (183, 28, 28)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=16)
def font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # an old Pillow, or none with FreeType
        return ImageFont.load_default()


def font_size(cell: Sequence[int]) -> int:
    """Text height for cells of this size: about a twelfth of a side, 12 to 64 px."""
    return max(12, min(64, round(min(cell) / 12)))


def wrap(text: str, face: Font, width: float, max_lines: int) -> list[str]:
    """``text`` in lines of at most ``width`` px, at most ``max_lines`` (the last cut with …)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if face.getlength(trial) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return [_cut(one, face, width) for one in lines[: max(1, max_lines)]]


def _cut(line: str, face: Font, width: float) -> str:
    if face.getlength(line) <= width:
        return line
    while line and face.getlength(line + "…") > width:
        line = line[:-1]
    return line + "…"


def fit_size(size: Sequence[int], box: Sequence[int]) -> tuple[int, int]:
    """The largest size of ``size``'s shape that fits in ``box``."""
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def fit(image: Image.Image, box: Sequence[int]) -> Image.Image:
    """``image`` as RGB (transparency over white), scaled to fit ``box`` (box-reduced, then Lanczos)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, PAPER)
        image.paste(rgba, mask=rgba.getchannel("A"))
    elif image.mode != "RGB":
        image = image.convert("RGB")
    size = fit_size(image.size, box)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)


@dataclass(frozen=True)
class Layout:
    """Where everything is on a sheet: label bands (title, top, left) and cells with gaps."""

    cell: tuple[int, int]
    cols: int
    rows: int
    font_size: int
    line: int
    pad: int
    gap: int
    left: int
    top: int
    title: int
    col_lines: tuple[tuple[str, ...], ...]
    row_lines: tuple[tuple[str, ...], ...]

    @classmethod
    def make(
        cls,
        cell: tuple[int, int],
        *,
        cols: int,
        rows: int,
        col_labels: Sequence[str],
        row_labels: Sequence[str],
        titled: bool,
    ) -> Layout:
        size = font_size(cell)
        face = font(size)
        line, pad, gap = round(size * 1.25), max(4, size // 2), max(2, min(cell) // 64)
        col_lines = tuple(tuple(wrap(t, face, cell[0] - 2 * pad, 3)) for t in col_labels)
        top = 2 * pad + line * max(len(lines) for lines in col_lines) if col_lines else gap
        left = gap
        row_lines: tuple[tuple[str, ...], ...] = ()
        if row_labels:
            widest = max(face.getlength(t) for t in row_labels) + 2 * pad
            left = round(min(max(widest, 64, cell[0] * 0.5), max(128, cell[0] * 1.2)))
            most = max(1, cell[1] // line)
            row_lines = tuple(tuple(wrap(t, face, left - 2 * pad, most)) for t in row_labels)
        title = 2 * pad + line if titled else 0
        return cls(cell, cols, rows, size, line, pad, gap, left, top, title, col_lines, row_lines)

    @property
    def size(self) -> tuple[int, int]:
        width = self.left + self.cols * self.cell[0] + (self.cols - 1) * self.gap + self.gap
        height = self.title + self.top + self.rows * self.cell[1] + self.rows * self.gap
        return width, height

    def box(self, col: int, row: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a cell."""
        left = self.left + col * (self.cell[0] + self.gap)
        top = self.title + self.top + row * (self.cell[1] + self.gap)
        return left, top, left + self.cell[0], top + self.cell[1]


def _centred(
    draw: ImageDraw.ImageDraw,
    text: str,
    mid: float,
    top: float,
    face: Font,
    fill: tuple[int, int, int],
) -> None:
    draw.text((round(mid - face.getlength(text) / 2), round(top)), text, font=face, fill=fill)


def draw_labels(draw: ImageDraw.ImageDraw, layout: Layout, title: str) -> None:
    """The title band, the column labels above the cells and the row labels beside them."""
    face = font(layout.font_size)
    if title and layout.title:
        draw.text(
            (layout.gap + layout.pad, layout.pad),
            _cut(title, face, layout.size[0] - 2 * layout.pad),
            font=face,
            fill=INK,
        )
    most = max((len(lines) for lines in layout.col_lines), default=0)
    for col, lines in enumerate(layout.col_lines):
        left, _, right, _ = layout.box(col, 0)
        top = layout.title + layout.pad + (most - len(lines)) * layout.line
        for k, text in enumerate(lines):
            _centred(draw, text, (left + right) / 2, top + k * layout.line, face, INK)
    for row, lines in enumerate(layout.row_lines):
        _, top, _, bottom = layout.box(0, row)
        first = (top + bottom) / 2 - len(lines) * layout.line / 2
        for k, text in enumerate(lines):
            x = layout.left - layout.pad - face.getlength(text)
            draw.text((round(x), round(first + k * layout.line)), text, font=face, fill=INK)


def draw_note(
    draw: ImageDraw.ImageDraw,
    layout: Layout,
    box: tuple[int, int, int, int],
    fill: tuple[int, int, int],
    texts: Sequence[str],
) -> None:
    """A cell without an image: its colour, and what happened in words, centred."""
    draw.rectangle(box, fill=fill)
    face = font(max(12, layout.font_size - 2))
    width = box[2] - box[0] - 2 * layout.pad
    most = max(1, (box[3] - box[1] - 2 * layout.pad) // layout.line)
    lines: list[tuple[str, tuple[int, int, int]]] = []
    for k, text in enumerate(t for t in texts if t):
        colour = (FAIL_INK if fill == FAIL else MUTED) if k == 0 else MUTED
        lines += [(one, colour) for one in wrap(text, face, width, most)]
    lines = lines[:most]
    top = (box[1] + box[3]) / 2 - len(lines) * layout.line / 2
    for k, (text, colour) in enumerate(lines):
        _centred(draw, text, (box[0] + box[2]) / 2, top + k * layout.line, face, colour)
