"""The panel's X/Y section: one or two fields and their values, and the contact sheet after.

Closed by default, and off while closed: only an open section with a field and
values for X turns Generate into a sweep. Values are typed as in AUTOMATIC1111's
X/Y/Z plot (``4, 6, 8``, ``4-8 (+2)``, ``4-8 [3]``); the line under the fields says
what they make while the user types. Parsing, planning and drawing are the session
layer's (``sweep_text``, ``sweep``, ``sheet``); this only holds the fields and shows
the sheet it is given, as a display-size JPEG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..session.sheet import ContactSheet
from ..session.sweep_text import PANEL_FIELDS, panel_label, preview
from .styles import Styles, error_text, muted

__all__ = ["SHEET_SIDE", "SweepSection"]

#: Longest side of the sheet as the panel shows it (the archived copy is larger).
SHEET_SIDE = 1600
TITLE = "X/Y sweep"

_OPTIONS = [("—", ""), *((panel_label(name), name) for name in PANEL_FIELDS)]
_HINT = (
    "e.g. 4, 6, 8 or 4-8 (+2) or 4-8 [3]; Prompt S/R: the words to find, then their replacements"
)


def _short(path: Path) -> str:
    """The path relative to the working directory when it lies below it (short captions)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class SweepSection(w.VBox):
    """X and Y: a field and its typed values each; ``rows()`` is what Generate sweeps."""

    def __init__(self, **kwargs: Any) -> None:
        def field(axis: str) -> w.Dropdown:
            return w.Dropdown(
                options=_OPTIONS,
                value="",
                description=axis,
                layout=w.Layout(width="200px"),
                style={"description_width": "20px"},
            )

        def values() -> w.Text:
            return w.Text(placeholder=_HINT, layout=w.Layout(flex="1 1 auto", width="auto"))

        self.x_field, self.x_values = field("X"), values()
        self.y_field, self.y_values = field("Y"), values()
        self.note = w.HTML(muted(preview([])[0]))
        row = w.Layout(align_items="center", width="100%")
        body = w.VBox(
            [
                w.HBox([self.x_field, self.x_values], layout=row),
                w.HBox([self.y_field, self.y_values], layout=row),
                self.note,
            ]
        )
        self.accordion = w.Accordion(children=[body], selected_index=None)
        self.accordion.set_title(0, TITLE)
        self.sheet_image = w.Image(
            format="jpeg", layout=w.Layout(display="none", max_width="100%", width="auto")
        )
        self.sheet_caption = w.HTML("")
        super().__init__([self.accordion, self.sheet_image, self.sheet_caption, Styles()], **kwargs)
        self.add_class("pixery")
        self.add_class("pixery-sweep")
        self.sheet_image.add_class("pixery-sweep-sheet")
        for widget in (self.x_field, self.x_values, self.y_field, self.y_values):
            widget.observe(self._on_change, "value")

    @property
    def is_open(self) -> bool:
        return self.accordion.selected_index == 0

    def expand(self, is_open: bool = True) -> None:
        """Open (or close) the section, as a click on its title does."""
        self.accordion.selected_index = 0 if is_open else None

    def rows(self) -> tuple[tuple[str, str], ...]:
        """The (field, typed values) rows Generate sweeps over; none while the section is closed."""
        if not self.is_open or not self.x_field.value:
            return ()
        pairs = (
            (self.x_field.value, self.x_values.value),
            (self.y_field.value, self.y_values.value),
        )
        return tuple((name, text) for name, text in pairs if name)

    def _on_change(self, _change: dict[str, Any]) -> None:
        text, ok = preview(
            [(self.x_field.value, self.x_values.value), (self.y_field.value, self.y_values.value)]
        )
        self.note.value = muted(text) if ok else error_text(text)

    def show_sheet(self, sheet: ContactSheet | None, note: str = "") -> None:
        """Show a sweep's contact sheet under the section (``None``: hide the last one)."""
        if sheet is None:
            self.sheet_image.layout.display = "none"
            self.sheet_caption.value = muted(note) if note else ""
            return
        image = sheet.images[0].copy()
        image.thumbnail((SHEET_SIDE, SHEET_SIDE))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=88)
        where = f" · archived as {_short(sheet.paths[0])}" if sheet.paths else ""
        more = f" · sheet 1 of {len(sheet)} (all: panel.sheet)" if len(sheet) > 1 else ""
        with self.hold_sync():
            self.sheet_image.value = buf.getvalue()
            self.sheet_image.layout.display = "block"
            self.sheet_caption.value = muted(f"{sheet.batch.summary()}{more}{where}{note}")
