"""The panel's request form, built from the request schema.

Every field of ``core.schema.FIELDS`` has exactly one control in ``CONTROLS``.
A control's label, range and starting value come from the schema; the table adds
only how it looks (widget, width, a shorter label, a placeholder), and a field
the table does not name (one declared since) gets a plain box for its type, so
it shows in the form without a line here. Width and height share
the Size menu, the LoRA and its scale the LoRA picker. ``RequestForm`` builds
the controls, reads them (``values``: the keywords of ``FormValues``), loads a
record's values into them (``load``, for remix) and fits them to a model
(``fit``: a control whose fields the model does not take is hidden, the seed
greyed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from ..core import schema
from ..core.catalog import SDXL_SIZES, ModelSpec
from ..core.images import image_type
from .lora import NO_LORA, LoraPicker

__all__ = ["CONTROLS", "Control", "RequestForm"]

#: Width of the labels left of the wide fields, so they line up.
LABEL_WIDTH = "72px"


def _plain(widget: w.Widget) -> Any:
    return widget.value


def _put(widget: w.Widget, value: Any) -> str | None:
    if value is not None:
        widget.value = value
    return None


@dataclass(frozen=True)
class Control:
    """How the panel edits one or more request fields."""

    #: The panel attribute that holds the widget (``panel.cfg``).
    attr: str
    #: The schema fields it edits; the first gives the label, range and default.
    fields: tuple[str, ...]
    #: Builds the widget from the keyword arguments ``build`` derives.
    make: Callable[..., w.Widget]
    width: str = "auto"
    #: When the schema's label is too long for the row ("CFG").
    label: str | None = None
    label_width: str | None = LABEL_WIDTH
    #: The starting value when the schema's default is None (steps before a model is chosen).
    start: Any = None
    #: Passes the range as ``min``/``max``.
    bounded: bool = False
    #: A model that does not take the field greys the control rather than hiding it.
    grey_when_unused: bool = False
    #: False: the control follows the model itself (the LoRA picker says why it is off).
    fits: bool = True
    #: Widget → the ``FormValues`` keywords it holds.
    read: Callable[[w.Widget], dict[str, Any]] | None = None
    #: (widget, field values) → a note on what could not be loaded, or None.
    write: Callable[[w.Widget, Mapping[str, Any]], str | None] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> w.Widget:
        first = schema.field(self.fields[0])
        kwargs: dict[str, Any] = {"description": self.label or first.label, **self.options}
        kwargs["layout"] = w.Layout(width=self.width)
        if self.label_width is not None:
            kwargs["style"] = {"description_width": self.label_width}
        if self.bounded and first.range is not None:
            kwargs["min"], kwargs["max"] = first.range
        value = first.default if first.default not in (None, ...) else self.start
        if value is not None:
            kwargs["value"] = value
        return self.make(**kwargs)

    def values(self, widget: w.Widget) -> dict[str, Any]:
        if self.read is not None:
            return self.read(widget)
        return {self.fields[0]: _plain(widget)}

    def load(self, widget: w.Widget, values: Mapping[str, Any]) -> str | None:
        if self.write is not None:
            return self.write(widget, values)
        return _put(widget, values.get(self.fields[0]))


# -- the controls that need more than a value ------------------------------------------------


def _size_menu(**kwargs: Any) -> w.Dropdown:
    kwargs.pop("value", None)  # the schema's width alone is not a size
    options = [(f"{width}×{height}", (width, height)) for width, height in SDXL_SIZES]
    return w.Dropdown(options=options, value=SDXL_SIZES[0], **kwargs)


def _read_size(menu: w.Widget) -> dict[str, Any]:
    return {"size": tuple(menu.value)}


def _write_size(menu: w.Widget, values: Mapping[str, Any]) -> str | None:
    size = (values.get("width"), values.get("height"))
    if None in size:
        return None
    if size in [option[1] for option in menu.options]:
        menu.value = size
        return None
    return f"The size {size[0]}×{size[1]} is not in the menu."


def _as_text(name: str) -> Callable[[w.Widget, Mapping[str, Any]], str | None]:
    """Write field ``name`` into a text box (the Seed, a newer optional number): None is blank."""

    def write(box: w.Widget, values: Mapping[str, Any]) -> str | None:
        value = values.get(name)
        box.value = "" if value is None else str(value)
        return None

    return write


def _upload(**kwargs: Any) -> w.FileUpload:
    kwargs.pop("value", None)
    return w.FileUpload(accept="image/*", multiple=False, **kwargs)


def _read_upload(upload: w.Widget) -> dict[str, Any]:
    chosen = upload.value
    return {"reference": bytes(chosen[0]["content"]) if chosen else None}


def set_upload(upload: w.FileUpload, image: bytes | None, *, name: str) -> None:
    """Put ``image`` in a file upload as if the user had picked it (``None`` empties it)."""
    if image is None:
        upload.value = ()
        return
    now = dt.datetime.now(dt.timezone.utc)
    kind = (image_type(image) or ("image/png", ".png"))[0]
    upload.value = (
        {"name": name, "type": kind, "size": len(image), "content": image, "last_modified": now},
    )


def _write_upload(upload: w.Widget, values: Mapping[str, Any]) -> str | None:
    references = values.get("reference") or ()
    set_upload(upload, references[0] if references else None, name="reference.png")
    if len(references) > 1:
        return f"The panel takes one reference image; the first of {len(references)} was loaded."
    return None


def _lora_picker(**_derived: Any) -> LoraPicker:
    """The picker reads its own ranges from the schema; the derived arguments are unused."""
    return LoraPicker(enabled=False)


def _read_lora(picker: w.Widget) -> dict[str, Any]:
    return {"lora": picker.lora, "lora_scale": picker.lora_scale}


def _write_lora(picker: w.Widget, values: Mapping[str, Any]) -> str | None:
    lora, scale = values.get("lora"), values.get("lora_scale")
    if scale is not None:
        picker.scale.value = scale
    if not lora:
        picker.choice.value = NO_LORA
        return None
    if lora in picker.choice.options:
        picker.choice.value = lora
        return None
    return f"The LoRA {lora} is not offered by the server now; it was left out."


#: One control per request field (by field name), in the order of ``schema.FIELDS``.
_TABLE: tuple[Control, ...] = (
    Control(
        "prompt", ("prompt",), w.Textarea, "100%",
        options={"rows": 3, "placeholder": "Describe the image, e.g. 1girl, solo, lighthouse at dusk"},
    ),
    Control(
        "negative_prompt", ("negative_prompt",), w.Textarea, "100%", label="Negative",
        options={"rows": 2, "placeholder": "What to keep out (empty: the server's default)"},
    ),
    Control(
        "size", ("width", "height"), _size_menu, "200px", label="Size",
        read=_read_size, write=_write_size,
    ),
    Control(
        "steps", ("steps",), w.BoundedIntText, "130px", label_width="44px", start=28, bounded=True,
    ),
    Control(
        "cfg", ("cfg_scale",), w.BoundedFloatText, "130px", label="CFG", label_width="36px",
        start=5.0, bounded=True, options={"step": 0.5},
    ),
    Control(
        "seed", ("seed",), w.Text, "190px", label_width="40px", grey_when_unused=True,
        write=_as_text("seed"), options={"placeholder": "random"},
    ),
    Control(
        "reference", ("reference",), _upload, label_width=None,
        read=_read_upload, write=_write_upload,
    ),
    Control(
        "ip_adapter_scale", ("ip_adapter_scale",), w.FloatSlider, "280px", label="IP-Adapter",
        bounded=True,
        options={"step": 0.05, "readout_format": ".2f", "continuous_update": False},
    ),
    Control(
        "lora_picker", ("lora", "lora_scale"), _lora_picker, fits=False,
        read=_read_lora, write=_write_lora,
    ),
)  # fmt: skip


def _number_or_text(name: str, kind: type) -> Callable[[w.Widget], dict[str, Any]]:
    """Read a box of an optional number: blank is None (the back end's default), a number
    is that number, anything else stays text (validation then says what is wrong)."""

    def read(box: w.Widget) -> dict[str, Any]:
        text = box.value.strip()
        try:
            value = kind(text) if text else None
        except ValueError:
            value = text
        return {name: value}

    return read


def _plain_control(declared: schema.RequestField) -> Control:
    """A field with no row in the table (one declared since) gets a box for its type: a
    bounded box when it has a default, else a text box whose blank means "not set"."""
    name = declared.name
    if declared.type not in (int, float, str):
        raise TypeError(f"The panel has no control for {name!r}: add one to _TABLE.")
    if declared.default is not None and declared.type is not str:
        kind = w.BoundedIntText if declared.type is int else w.BoundedFloatText
        return Control(name, (name,), kind, "200px", bounded=declared.range is not None)
    read = None if declared.type is str else _number_or_text(name, declared.type)
    placeholder = "default" if declared.range is None else "{:g}–{:g}".format(*declared.range)
    return Control(
        name, (name,), w.Text, "200px", read=read, write=_as_text(name),
        options={"placeholder": placeholder},
    )  # fmt: skip


_CONTROLS = [
    *_TABLE,
    *(_plain_control(f) for f in schema.FIELDS if not any(f.name in c.fields for c in _TABLE)),
]
#: Each request field's control.
CONTROLS: dict[str, Control] = {name: c for c in _CONTROLS for name in c.fields}


class RequestForm:
    """The request controls, built from the schema; ``widgets`` by panel attribute."""

    def __init__(self) -> None:
        self.widgets: dict[str, w.Widget] = {c.attr: c.build() for c in _CONTROLS}

    def values(self) -> dict[str, Any]:
        """What the controls hold, as ``FormValues`` keywords (the Seed field as its text)."""
        out: dict[str, Any] = {}
        for control in _CONTROLS:
            out.update(control.values(self.widgets[control.attr]))
        return out

    def load(self, values: Mapping[str, Any]) -> list[str]:
        """Put request field values (by field name) into the controls; what could not go in."""
        notes = [control.load(self.widgets[control.attr], values) for control in _CONTROLS]
        return [note for note in notes if note is not None]

    def fit(self, spec: ModelSpec | None) -> None:
        """Show what ``spec`` takes (with no model: what every model takes); grey the seed."""
        for control in _CONTROLS:
            widget = self.widgets[control.attr]
            taken = all(_taken(spec, name) for name in control.fields)
            if control.grey_when_unused:
                widget.disabled = not taken
                widget.placeholder = "random" if taken or spec is None else "not used"
            elif control.fits:
                widget.layout.display = None if taken else "none"

    def newer(self) -> list[w.Widget]:
        """The controls of fields the table does not name: the panel puts them in a row."""
        return [self.widgets[c.attr] for c in _CONTROLS[len(_TABLE) :]]

    def shown(self, attr: str) -> bool:
        return self.widgets[attr].layout.display != "none"


def _taken(spec: ModelSpec | None, name: str) -> bool:
    """Whether ``spec`` takes field ``name``; with no model, whether every back end does."""
    declared = schema.field(name)
    if spec is None:
        return set(declared.backends) == set(schema.BACKENDS)
    taken = schema.takes(spec, name)
    return taken and (declared.needs is None or _taken(spec, declared.needs))
