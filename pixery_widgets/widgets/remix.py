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
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..archive import ArchiveRecord
from ..archive.record import PARENT_ID
from ..session.gallery_views import remix_values
from .form import set_upload

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
    set_upload(panel.reference, image, name=name)


def _choose_model(panel: PixeryPanel, model: str) -> str | None:
    if panel.choose(model):
        return None
    entry = next((e for e in panel.menu if e.id == model), None)
    why = entry.reason if entry is not None and entry.reason else "not in the menu"
    return f"{model} cannot be chosen now ({why}): pick a model before generating."


def remix_into(panel: PixeryPanel, record: ArchiveRecord) -> list[str]:
    """Load the record's model and request fields (prompt, negative prompt, size, seed,
    steps, CFG, LoRA and scale, reference) into ``panel``; the notes on what could not be
    loaded. The model goes first: choosing it fits the form, and the LoRA picker offers
    what the server has."""
    values = remix_values(record)
    notes = list(values.notes)
    with panel.hold_sync():
        if (note := _choose_model(panel, values.model)) is not None:
            notes.append(note)
        notes += panel.form.load(values.fields())
    setattr(panel, _PARENT, record.id)  # the next Generate makes its children
    return notes
