"""Loading an archived record into a panel's form: remix, and "use as reference".

``PixeryPanel.remix(record)`` and ``.use_reference(image)`` call these, so the
panel itself grows by two short methods. The next press of Generate after a
remix records the remixed image as the new images' parent (``remix_parent``),
as regenerate and vary do. The values come from the session
layer's ``remix_values``; here they are put into the form's widgets, and what
cannot go in (a model greyed now, a LoRA the server no longer offers, a size
the menu lacks) is said in words.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..archive import ArchiveRecord
from ..archive.record import PARENT_ID
from ..session.gallery_views import remix_values
from .lora import NO_LORA

if TYPE_CHECKING:
    from .panel import PixeryPanel

__all__ = ["remix_into", "remix_parent", "set_reference"]

#: The panel attribute that holds the record its form was last remixed from.
_PARENT = "_remixed_from"


@contextlib.contextmanager
def remix_parent(panel: PixeryPanel) -> Iterator[None]:
    """Around the press of Generate after a remix: the images it makes record the remixed
    record as their parent (the task started inside copies the context), once."""
    parent = getattr(panel, _PARENT, None)
    setattr(panel, _PARENT, None)
    if parent is None:
        yield
        return
    token = PARENT_ID.set(parent)
    try:
        yield
    finally:
        PARENT_ID.reset(token)


def set_reference(panel: PixeryPanel, image: bytes | None, *, name: str = "reference.png") -> None:
    """Put ``image`` in the panel's reference field (``None`` empties it)."""
    if image is None:
        panel.reference.value = ()
        return
    kind = "image/png" if image[:4] == b"\x89PNG" else "image/jpeg"
    now = dt.datetime.now(dt.timezone.utc)
    panel.reference.value = (
        {"name": name, "type": kind, "size": len(image), "content": image, "last_modified": now},
    )


def _choose_model(panel: PixeryPanel, model: str) -> str | None:
    if panel.choose(model):
        return None
    entry = next((e for e in panel.menu if e.id == model), None)
    why = entry.reason if entry is not None and entry.reason else "not in the menu"
    return f"{model} cannot be chosen now ({why}): pick a model before generating."


def _lora(panel: PixeryPanel, lora: str | None, scale: float | None) -> str | None:
    picker = panel.lora_picker
    if scale is not None:
        picker.scale.value = scale
    if not lora:
        picker.choice.value = NO_LORA
        return None
    if lora in picker.choice.options:
        picker.choice.value = lora
        return None
    return f"The LoRA {lora} is not offered by the server now; it was left out."


def remix_into(panel: PixeryPanel, record: ArchiveRecord) -> list[str]:
    """Load the record's prompt, negative prompt, model, size, seed, steps, CFG, LoRA and
    scale and references into ``panel``; the notes on what could not be loaded."""
    values = remix_values(record)
    notes = list(values.notes)
    with panel.hold_sync():
        if (note := _choose_model(panel, values.model)) is not None:
            notes.append(note)
        panel.prompt.value = values.prompt
        panel.negative_prompt.value = values.negative_prompt
        sizes = [option[1] for option in panel.size.options]
        if values.size in sizes:
            panel.size.value = values.size
        elif values.size is not None:
            notes.append(f"The size {values.size[0]}×{values.size[1]} is not in the menu.")
        panel.seed.value = "" if values.seed is None else str(values.seed)
        if values.steps is not None:
            panel.steps.value = values.steps
        if values.cfg_scale is not None:
            panel.cfg.value = values.cfg_scale
        if (note := _lora(panel, values.lora, values.lora_scale)) is not None:
            notes.append(note)
        set_reference(panel, values.references[0] if values.references else None)
        if len(values.references) > 1:
            notes.append(
                f"The panel takes one reference image; the first of {len(values.references)} "
                "was loaded."
            )
        if values.ip_adapter_scale is not None:
            panel.ip_adapter_scale.value = values.ip_adapter_scale
    setattr(panel, _PARENT, record.id)  # the next Generate makes its children
    return notes
