"""The panel's form controls, one small builder each, and the rows that hold them.

Only construction lives here (labels, ranges, widths); what the controls show
for the chosen model is the session layer's ``FormView``, applied by the panel.
"""

from __future__ import annotations

from typing import Any, TypeVar

import ipywidgets as w

from ..core.catalog import SDXL_SIZES
from ..core.types import DEFAULT_IP_ADAPTER_SCALE
from ..session.controller import MAX_COUNT
from ..session.validation import RANGES

__all__ = [
    "cfg_field",
    "count_field",
    "ip_adapter_slider",
    "negative_prompt_field",
    "progress_bar",
    "prompt_field",
    "reference_upload",
    "remove_reference_button",
    "row",
    "seed_field",
    "size_dropdown",
    "steps_field",
]

W = TypeVar("W", bound=w.Widget)

#: Width of the labels left of the wide fields, so they line up.
LABEL = {"description_width": "72px"}


def row(*parts: w.Widget) -> w.HBox:
    """A wrapping row; a Layout each, so hiding one row never hides another."""
    layout = w.Layout(align_items="center", flex_flow="row wrap", width="100%")
    box = w.HBox(list(parts), layout=layout)
    box.add_class("pixery-row")
    return box


def _text_area(description: str, placeholder: str, rows: int) -> w.Textarea:
    return w.Textarea(
        placeholder=placeholder,
        description=description,
        rows=rows,
        layout=w.Layout(width="100%"),
        style=LABEL,
    )


def prompt_field() -> w.Textarea:
    return _text_area("Prompt", "Describe the image, e.g. 1girl, solo, lighthouse at dusk", 3)


def negative_prompt_field() -> w.Textarea:
    return _text_area("Negative", "What to keep out (empty: the server's default)", 2)


def size_dropdown() -> w.Dropdown:
    """The SDXL-native sizes, the first (square) chosen."""
    return w.Dropdown(
        options=[(f"{width}×{height}", (width, height)) for width, height in SDXL_SIZES],
        value=SDXL_SIZES[0],
        description="Size",
        layout=w.Layout(width="200px"),
        style=LABEL,
    )


def seed_field() -> w.Text:
    """Empty means random (the placeholder says so)."""
    return w.Text(
        placeholder="random",
        description="Seed",
        layout=w.Layout(width="190px"),
        style={"description_width": "40px"},
    )


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


def _in_range(kind: type[W], field: str, description: str, value: float, **extra: Any) -> W:
    """A number box bounded by the request field's range (``session.validation.RANGES``)."""
    low, high = RANGES[field]
    return kind(
        value=value,
        min=low,
        max=high,
        description=description,
        layout=w.Layout(width="130px"),
        **extra,
    )


def steps_field() -> w.BoundedIntText:
    return _in_range(w.BoundedIntText, "steps", "Steps", 28, style={"description_width": "44px"})


def cfg_field() -> w.BoundedFloatText:
    style = {"description_width": "36px"}
    return _in_range(w.BoundedFloatText, "cfg_scale", "CFG", 5.0, step=0.5, style=style)


def reference_upload() -> w.FileUpload:
    return w.FileUpload(
        accept="image/*",
        multiple=False,
        description="Reference image",
        layout=w.Layout(width="auto"),
    )


def remove_reference_button() -> w.Button:
    """Shown only while a reference image is chosen."""
    return w.Button(
        description="Remove",
        icon="times",
        tooltip="Generate without a reference image",
        layout=w.Layout(width="auto", display="none"),
    )


def ip_adapter_slider() -> w.FloatSlider:
    low, high = RANGES["ip_adapter_scale"]
    return w.FloatSlider(
        value=DEFAULT_IP_ADAPTER_SCALE,
        min=low,
        max=high,
        step=0.05,
        description="IP-Adapter",
        readout_format=".2f",
        continuous_update=False,
        layout=w.Layout(width="280px"),
        style=LABEL,
    )


def progress_bar() -> w.IntProgress:
    return w.IntProgress(value=0, min=0, max=1, bar_style="info", layout=w.Layout(width="240px"))
