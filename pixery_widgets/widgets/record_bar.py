"""Under the panel's image: star it, and open its details (the gallery's own view).

The image shown is looked up in the archive it was saved to; until it is
archived (or when archiving is off) the bar stays hidden. The details are a
``RecordDetails``, the same front end and actions as the gallery's details.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..archive import ArchiveRecord
from ..core.errors import PixeryError
from ..core.types import Generation
from ..session.gallery_views import record_for

__all__ = ["RecordBar"]


class RecordBar(w.VBox):
    """A star toggle and a Details button for the image the panel shows."""

    def __init__(self, **kwargs: Any) -> None:
        self.star_button = w.Button(
            description="☆ Star",
            tooltip="Star this image in the archive",
            layout=w.Layout(width="auto"),
        )
        self.details_button = w.Button(
            description="Details",
            tooltip="Every parameter, the A1111 text, lineage, remix",
            layout=w.Layout(width="auto"),
        )
        self._row = w.HBox([self.star_button, self.details_button])
        super().__init__([self._row], **kwargs)
        self.add_class("pixery-record-bar")
        self.layout.display = "none"
        #: The archived record of the image shown (``None`` when there is none).
        self.record: ArchiveRecord | None = None
        #: The panel the details' Remix and "Use as reference" load into.
        self.panel: Any = None
        self.details: Any = None
        self.star_button.on_click(lambda _b: self.toggle_star())
        self.details_button.on_click(lambda _b: self.open_details())

    def show(self, generation: Generation | None) -> None:
        """Follow the image shown (``None``: nothing shown)."""
        self.record = record_for(generation) if generation is not None else None
        self.layout.display = None if self.record is not None else "none"
        self._draw_star()
        if self.details is not None and self.details.detail is not None:
            if self.record is None:
                self.details.detail = None
            else:
                self.details.show(self.record)

    def _draw_star(self) -> None:
        starred = self.record is not None and self.record.starred
        self.star_button.description = "★ Starred" if starred else "☆ Star"
        self.star_button.button_style = "warning" if starred else ""

    def toggle_star(self) -> None:
        """Star the image shown (or unstar it)."""
        if self.record is None:
            return
        try:
            self.record = self.record.unstar() if self.record.starred else self.record.star()
        except PixeryError as exc:
            self.star_button.tooltip = exc.message
            return
        self._draw_star()
        if self.details is not None and self.details.detail is not None:
            self.details.show(self.record)

    def open_details(self) -> None:
        """Open the details view of the image shown, under it."""
        if self.record is None or self.record.archive is None:
            return
        if self.details is None:
            from .compare import RecordDetails

            self.details = RecordDetails(self.record.archive, panel=self.panel)
            self.details.observe(self._on_details, "detail")
        self.details.show(self.record)
        self.children = [self._row, self.details]

    def _on_details(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            self.children = [self._row]
        elif self.record is not None and change["new"].get("id") == self.record.id:
            try:
                self.record = self.record._store().get(self.record.id)
            except PixeryError:  # emptied from the trash meanwhile
                self.record = None
            self._draw_star()
