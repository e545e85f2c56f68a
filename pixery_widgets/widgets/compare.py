"""``px.compare(records)``: 2 to 4 archived images side by side, what differs picked out.

The gallery's own compare view, alone: the same front end (``static/gallery.js``)
in its "compare" mode; a click on an image opens its details there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets

from ..archive import ArchiveRecord
from ..core.errors import InvalidRequestError
from ..session.gallery import MAX_COMPARE
from ..session.gallery_views import compare_view
from .gallery import Gallery

__all__ = ["Compare", "RecordDetails", "compare"]


class Compare(Gallery):
    """The records compared (``comparing``), with the gallery's details and actions."""

    mode = traitlets.Unicode("compare").tag(sync=True)


class RecordDetails(Gallery):
    """One record's details view, the gallery's own (the panel's strip opens it)."""

    mode = traitlets.Unicode("details").tag(sync=True)


def compare(records: Sequence[ArchiveRecord], *, panel: Any = None) -> Compare:
    """Show 2 to 4 archived records side by side; the parameters that differ come first."""
    records = list(records)
    if not 2 <= len(records) <= MAX_COMPARE or not all(
        isinstance(r, ArchiveRecord) for r in records
    ):
        raise InvalidRequestError(
            f"px.compare takes 2 to {MAX_COMPARE} archived records (from px.Archive().search() "
            f"or a gallery's .shown); got {len(records)}."
        )
    archive = records[0].archive
    if archive is None:
        raise InvalidRequestError("These records are not attached to an archive.")
    widget = Compare(archive, panel=panel)
    widget.comparing = compare_view(records)
    return widget
