"""The panel's controls that are not request fields, and the rows that hold them.

The request fields' controls are built from the schema in ``widgets/form.py``;
what lives here is the panel's own: the Count box, the reference's Remove
button and the batch's progress bar. Only construction (labels, widths); what
the controls show for the chosen model is applied by the panel.
"""

from __future__ import annotations

import ipywidgets as w

from ..session.controller import MAX_COUNT

__all__ = ["count_field", "progress_bar", "remove_reference_button", "row"]


def row(*parts: w.Widget) -> w.HBox:
    """A wrapping row; a Layout each, so hiding one row never hides another."""
    layout = w.Layout(align_items="center", flex_flow="row wrap", width="100%")
    box = w.HBox(list(parts), layout=layout)
    box.add_class("pixery-row")
    return box


def count_field() -> w.BoundedIntText:
    return w.BoundedIntText(
        value=1,
        min=1,
        max=MAX_COUNT,
        description="Count",
        tooltip=f"How many images (1–{MAX_COUNT}), on consecutive seeds",
        layout=w.Layout(width="120px"),
        style={"description_width": "44px"},
    )


def remove_reference_button() -> w.Button:
    """Shown only while a reference image is chosen."""
    return w.Button(
        description="Remove",
        icon="times",
        tooltip="Generate without a reference image",
        layout=w.Layout(width="auto", display="none"),
    )


def progress_bar() -> w.IntProgress:
    return w.IntProgress(value=0, min=0, max=1, bar_style="info", layout=w.Layout(width="240px"))
