"""Where images appear: the latest one large with its caption, earlier ones as thumbnails.

The widget state holds one display-size JPEG and small thumbnails, never the
full-size PNGs, so a notebook saved with its widgets stays light. Everything
is updated through traits (``Image.value``, ``HTML.value``, the strip's
state), which works from background tasks, unlike ``with output: display()``.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass
from typing import Any

import anywidget
import ipywidgets as w
import traitlets

from ..core.images import data_url, thumbnail_png
from ..core.palette import STATIC, stylesheet
from ..core.types import Generation
from ..session.controller import MAX_COUNT
from .record_bar import RecordBar
from .styles import Styles, error_box

__all__ = ["DISPLAY_SIDE", "THUMB_SIDE", "ImageOutput"]

#: Longest side of the large image kept in the widget state.
DISPLAY_SIDE = 768
#: Longest side of a thumbnail in the strip.
THUMB_SIDE = 96
#: Tallest the large image is drawn, so the panel and the image fit on one screen.
MAX_SHOWN_HEIGHT = 640
#: Images kept in the strip: a whole batch of the largest Count fits.
MAX_HISTORY = MAX_COUNT

PLACEHOLDER = "No image yet: write a prompt and press Generate."


class _ImageStrip(anywidget.AnyWidget):
    """Clickable thumbnails; ``selected`` is the index clicked (or shown)."""

    _esm = STATIC / "image_strip.js"
    _css = stylesheet("image_strip.css")

    items = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)


@dataclass(frozen=True)
class _Shown:
    generation: Generation
    display_jpeg: bytes
    thumb_url: str


def preview_images(png: bytes) -> tuple[bytes, bytes]:
    """(display-size JPEG, thumbnail JPEG) for one image; CPU-bound, run it in a thread."""
    return thumbnail_png(png, DISPLAY_SIDE, fmt="JPEG"), thumbnail_png(png, THUMB_SIDE, fmt="JPEG")


def _note(text: str) -> str:
    """A line in place of the caption ("Generating…", the placeholder)."""
    return f'<div class="pixery-caption pixery-muted">{html.escape(text)}</div>'


def _caption(generation: Generation) -> str:
    """The caption under the large image, and its prompt below it."""
    prompt = generation.prompt
    below = (
        f'<br><span class="pixery-caption-prompt">{html.escape(prompt)}</span>' if prompt else ""
    )
    return f'<div class="pixery-caption">{html.escape(generation.caption())}{below}</div>'


class ImageOutput(w.VBox):
    """The latest image with its caption, a strip of earlier ones, errors in place."""

    def __init__(self, **kwargs: Any) -> None:
        self.image = w.Image(
            format="jpeg",
            layout=w.Layout(
                display="none",
                max_width="100%",
                max_height=f"{MAX_SHOWN_HEIGHT}px",
                width="auto",
                align_self="flex-start",
                object_fit="contain",
            ),
        )
        self.caption = w.HTML(_note(PLACEHOLDER))
        self.strip = _ImageStrip()
        #: Star the image shown, open its details (the gallery's view).
        self.record_bar = RecordBar()
        super().__init__(
            [self.image, self.caption, self.record_bar, self.strip, Styles()], **kwargs
        )
        self.add_class("pixery")
        self.add_class("pixery-output")
        self.history: list[_Shown] = []
        self.current: Generation | None = None
        #: The error shown in place of an image, in words (``None`` when an image shows).
        self.error: str | None = None
        self.strip.observe(self._on_selected, "selected")

    # -- showing --------------------------------------------------------------------------

    def show_generation(
        self,
        generation: Generation,
        *,
        display_jpeg: bytes | None = None,
        thumb: bytes | None = None,
    ) -> None:
        """Show ``generation`` large and add it to the strip."""
        if display_jpeg is None or thumb is None:
            display_jpeg, thumb = preview_images(generation.png_bytes)
        self.history.append(_Shown(generation, display_jpeg, data_url(thumb)))
        del self.history[:-MAX_HISTORY]
        self._sync_strip(len(self.history) - 1)
        self._show(self.history[-1])

    async def ashow_generation(
        self,
        generation: Generation,
        *,
        display_jpeg: bytes | None = None,
        thumb: bytes | None = None,
    ) -> None:
        """As ``show_generation``, with the image work (if any is left) off the event loop."""
        if display_jpeg is None or thumb is None:
            display_jpeg, thumb = await asyncio.to_thread(preview_images, generation.png_bytes)
        self.show_generation(generation, display_jpeg=display_jpeg, thumb=thumb)

    def show_error(self, message: str, *, title: str = "The image could not be made") -> None:
        """Show a failure in words where the image would be; the strip stays."""
        self.error = message
        self.current = None
        self.image.layout.display = "none"
        self.caption.value = error_box(title, message)
        self.record_bar.show(None)
        self._sync_strip(-1)

    def show_note(self, text: str) -> None:
        """A line in place of the caption (e.g. "Generating…") keeping the image shown."""
        self.caption.value = _note(text)

    def _show(self, shown: _Shown) -> None:
        self.error = None
        self.current = shown.generation
        self.record_bar.show(shown.generation)
        with self.hold_sync():
            self.image.value = shown.display_jpeg
            self.image.layout.display = "block"
            self.caption.value = _caption(shown.generation)

    def _sync_strip(self, selected: int) -> None:
        with self.strip.hold_sync():
            self.strip.items = [
                {"src": s.thumb_url, "title": s.generation.caption()} for s in self.history
            ]
            self.strip.selected = selected

    def _on_selected(self, change: dict[str, Any]) -> None:
        index = change["new"]
        if 0 <= index < len(self.history) and self.history[index].generation is not self.current:
            self._show(self.history[index])

    def select(self, index: int) -> None:
        """Bring back an earlier image (as a click on its thumbnail does)."""
        self.strip.selected = index

    def clear(self) -> None:
        self.history.clear()
        self.current = None
        self.error = None
        self.image.layout.display = "none"
        self.caption.value = _note(PLACEHOLDER)
        self.record_bar.show(None)
        self._sync_strip(-1)
