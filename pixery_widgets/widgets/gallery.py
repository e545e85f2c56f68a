"""``px.Gallery``: the archive as a thumbnail grid, searchable, with a details view and actions.

An anywidget (``static/gallery.js``, ``static/gallery.css``). Its state is in
traitlets, so code and tests read and drive it as the front end does:
``query``, ``filters``, ``records`` (the cards shown), ``selected`` (ids),
``detail`` (the record opened, or ``None``), ``comparing``. The front end
sends the user's gestures as ``command`` messages (``{"command": "star",
"ids": [...]}``, ``{"command": "key", "key": "ArrowRight"}``); ``command()``
takes the same from Python. The rules are the session layer's
(``session/gallery.py``); this module draws them.

The widget state holds only the thumbnails near what is on screen (the front
end reports it with ``visible``), each a small JPEG: a saved notebook with a
gallery open stays light.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..archive import Archive, ArchiveRecord, get_archive, on_changed, on_saved
from ..core.config import load_settings
from ..core.errors import InvalidRequestError, PixeryError
from ..core.palette import STATIC, stylesheet
from ..session.batch import Batch
from ..session.gallery import GalleryState, clean_filters
from ..session.gallery_views import card, compare_view, detail_view
from .gallery_actions import ActionsMixin

__all__ = ["Gallery"]

log = logging.getLogger(__name__)


#: Kept thumbnails (data URLs, in Python only) beyond the ones in the state.
_CACHE = 600


def _open_archive(target: Archive | Batch | str | os.PathLike[str] | None) -> Archive:
    if isinstance(target, Batch):
        if target.archive is None:
            raise InvalidRequestError("This batch was not archived (archive=False): no gallery.")
        return target.archive
    found = get_archive(True if target is None else target, load_settings())
    assert found is not None
    return found


class Gallery(ActionsMixin, anywidget.AnyWidget):
    """Every archived image, newest first: search, filter, open, star, tag, remix, compare.

    ``archive``: an ``Archive``, a folder, a ``Batch`` (its images), or ``None`` for
    the configured one. ``panel``: the ``PixeryPanel`` that Remix and "Use as
    reference" load into.
    """

    _esm = STATIC / "gallery.js"
    _css = stylesheet("gallery.css")

    mode = traitlets.Unicode("gallery").tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    filters = traitlets.Dict().tag(sync=True)
    records = traitlets.List(traitlets.Dict()).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    has_more = traitlets.Bool(False).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    focus = traitlets.Unicode("").tag(sync=True)
    detail = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    comparing = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    menus = traitlets.Dict().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    message_kind = traitlets.Unicode("info").tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    linked = traitlets.Bool(False).tag(sync=True)
    busy = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        archive: Archive | Batch | str | os.PathLike[str] | None = None,
        *,
        panel: Any = None,
        page_size: int = 60,
        query: str = "",
        filters: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        first = clean_filters(filters)
        if isinstance(archive, Batch):
            first.setdefault("batch", archive.id)
        self.archive = _open_archive(archive)
        self.state = GalleryState(self.archive, page_size=page_size)
        self._thumbs: dict[str, tuple[str, str]] = {}
        self._window = (0, page_size)
        #: Cards kept with their thumbnail beyond those on screen, above and below.
        self._margin = max(6, page_size // 5)
        self._quiet = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._panel = panel
        super().__init__(**kwargs)
        self.linked = panel is not None
        self.on_msg(self._on_front_end)
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        stops = [on_saved(self._on_saved), on_changed(self._on_changed)]
        self._stop_listening = lambda: [stop() for stop in stops]
        if self.mode == "gallery":
            self._quietly(query=query, filters=first)
            self._run(lambda: self.state.search(query, first))
            self._sync_records()
        self._sync_menus()  # the tags complete a new tag in every view

    # -- what code reads ------------------------------------------------------------------------

    @property
    def panel(self) -> Any:
        return self._panel

    @panel.setter
    def panel(self, panel: Any) -> None:
        self._panel = panel
        self.linked = panel is not None

    @property
    def shown(self) -> list[ArchiveRecord]:
        """The records loaded, newest first (``records`` is what the front end draws of them)."""
        return list(self.state.records)

    def __repr__(self) -> str:
        return (
            f"Gallery({str(self.archive.root)!r}, {self.total} matches, {len(self.records)} shown)"
        )

    # -- from the front end and from code ---------------------------------------------------------

    def _on_front_end(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and "command" in content:
            args = {k: v for k, v in content.items() if k != "command"}
            self.command(str(content["command"]), **args)

    def command(self, name: str, **args: Any) -> None:
        """Do what the front end asks (the same message it sends); errors become ``message``."""
        handler = getattr(self, f"_do_{name}", None)
        if handler is None:
            self._say(f"Unknown gallery command {name!r}.", error=True)
            return
        self._run(lambda: handler(**args))

    def _run(self, action: Any) -> None:
        try:
            said = action()
        except PixeryError as exc:
            self._say(exc.message, error=True)
        except TypeError as exc:  # a message with the wrong fields
            self._say(f"The gallery could not do that: {exc}.", error=True)
        else:
            if isinstance(said, str):
                self._say(said)

    def _say(self, text: str, *, error: bool = False) -> None:
        with self.hold_sync():
            self.message = text
            self.message_kind = "error" if error else "info"
            self.can_undo = bool(self.state.undoable)

    # -- searching --------------------------------------------------------------------------------

    def _quietly(self, **values: Any) -> None:
        """Set traits without searching again (they follow the state)."""
        self._quiet = True
        try:
            for key, value in values.items():
                setattr(self, key, value)
        finally:
            self._quiet = False

    @traitlets.observe("query", "filters")
    def _on_search_changed(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        if change["name"] == "query":
            self._run(lambda: self._search(query=change["new"]))
        else:
            self._run(lambda: self._do_filter(filters=change["new"]))

    def _do_search(self, query: str = "") -> None:
        self._search(query=query)

    def _do_filter(self, filters: dict[str, Any] | None = None, **one: Any) -> None:
        """The whole set of filters (``filters``), or one changed (``{"model": "pony"}``)."""
        wanted = dict(self.state.filters if filters is None else filters)
        wanted.update(one)
        self._search(filters=wanted)

    def _search(self, *, query: str | None = None, filters: dict[str, Any] | None = None) -> None:
        try:
            self.state.search(query, filters)
        finally:  # a refused filter: the traits show what is really searched
            self._quietly(query=self.state.text, filters=dict(self.state.filters))
        self._window = (0, self.state.page_size)
        with self.hold_sync():
            self.selected = [i for i in self.selected if self.state.index_of(i) >= 0]
            self.focus = ""
            self._sync_records()
            self._say("" if self.total else self._nothing_found())

    def _nothing_found(self) -> str:
        if self.state.filters.get("trashed"):
            return "The trash is empty." if not self.state.text else "Nothing in the trash matches."
        return "No image matches." if (self.state.text or self.state.filters) else "No image yet."

    def _do_more(self) -> None:
        before = len(self.state.records)
        if self.state.more():
            self._window = (max(0, before - self._margin), len(self.state.records))
            self._sync_records()

    def _do_visible(self, first: int = 0, last: int = 0) -> None:
        """The front end scrolled: keep the thumbnails around ``first``..``last``."""
        window = (max(0, int(first) - self._margin), int(last) + self._margin + 1)
        if window != self._window:
            self._window = window
            self._sync_records()

    def _do_refresh(self) -> None:
        self._thumbs.clear()
        self.state.reload()
        self._sync_records()
        self._sync_menus()

    # -- drawing ----------------------------------------------------------------------------------

    def _thumb(self, record: ArchiveRecord) -> tuple[str, str]:
        got = self._thumbs.get(record.id)
        if got is None:
            shown = card(record)
            got = self._thumbs[record.id] = (shown["thumb"], shown["problem"])
            while len(self._thumbs) > _CACHE:
                self._thumbs.pop(next(iter(self._thumbs)))
        return got

    def _sync_records(self) -> None:
        start, end = self._window
        cards = []
        for i, record in enumerate(self.state.records):
            one = card(record, thumb=False)
            if start <= i < end:
                one["thumb"], one["problem"] = self._thumb(record)
            cards.append(one)
        with self.hold_sync():
            self.records = cards
            self.total = self.state.total
            self.has_more = self.state.has_more
            self.can_undo = bool(self.state.undoable)

    def _sync_menus(self) -> None:
        try:
            tags = self.archive.tags()
            self.menus = {
                "models": self.archive.models(),
                "loras": self.archive.loras(),
                "tags": [[tag, n] for tag, n in tags.items()],
            }
        except PixeryError as exc:
            self._say(exc.message, error=True)

    def _forget(self, ids: list[str]) -> None:
        """Drop kept thumbnails and cards of records that changed."""
        for i in ids:
            self._thumbs.pop(i, None)

    # -- the details view and compare -------------------------------------------------------------

    def open_record(self, record: ArchiveRecord | str) -> None:
        """Open the details of a record (a click on its thumbnail)."""
        self.command("open", id=record if isinstance(record, str) else record.id)

    def show(self, record: ArchiveRecord) -> None:
        """Show this record's details (the strip's details view uses it)."""
        with self.hold_sync():
            self.focus = record.id
            self.detail = detail_view(record)

    def _do_open(self, id: str) -> str:
        self.show(self.state.get(id))
        return ""  # what was said about another image is not about this one

    def _do_close(self) -> str:
        self._close_one()
        return ""

    def _close_one(self) -> None:
        if self.detail is not None:
            self.detail = None
        elif self.comparing is not None and self.mode != "compare":
            self.comparing = None
        elif self.selected:
            self.selected = []

    def _do_compare(self, ids: list[str] | None = None) -> str:
        records = self.state.compared(ids or self.selected)
        self.comparing = compare_view(records)
        return ""

    def _do_close_compare(self) -> None:
        self.comparing = None

    def _redraw_detail(self) -> None:
        if self.detail is not None:
            try:
                self.detail = detail_view(self.state.get(self.detail["id"]))
            except (KeyError, PixeryError):
                self.detail = None

    # -- live: an image archived while the gallery is open -------------------------------------

    def _on_saved(self, root: Path, record_id: str) -> None:
        if root == self.archive.root and self.mode == "gallery":
            self._on_loop(self._arrived, record_id)

    def _on_changed(self, root: Path, record_id: str) -> None:
        if root == self.archive.root:
            self._on_loop(self._refreshed, record_id)

    def _on_loop(self, call: Any, record_id: str) -> None:
        """The archive speaks from the saving thread: draw on the kernel's loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(call, record_id)
                return
            except RuntimeError:  # closed meanwhile
                pass
        call(record_id)

    def _refreshed(self, record_id: str) -> None:
        """A record changed elsewhere (a star in the panel): redraw its card and details."""
        index = self.state.index_of(record_id)
        opened = self.detail is not None and self.detail.get("id") == record_id
        if index < 0 and not opened:
            return
        try:
            record = self.archive.get(record_id)
        except (KeyError, PixeryError):
            return
        marks = (record.starred, list(record.tags), record.trashed)
        if index >= 0:
            shown = self.state.records[index]
            if (shown.starred, list(shown.tags), shown.trashed) != marks:  # not our own change
                self.state.records[index] = record
                self._sync_records()
        if opened and self.detail is not None:
            detail = self.detail
            if (detail["starred"], detail["tags"], detail["trashed"]) != marks:
                self.show(record)

    def _arrived(self, record_id: str) -> None:
        try:
            record = self.state.arrived(record_id)
        except PixeryError as exc:
            self._say(exc.message, error=True)
            return
        if record is None:
            return
        start, end = self._window
        if start == 0:
            self._window = (0, end + 1)
        menus = dict(self.menus)
        for key, value in (("models", record.model), ("loras", record.lora)):
            if value and value not in menus.get(key, []):
                menus[key] = sorted([*menus.get(key, []), value])
        with self.hold_sync():
            self._sync_records()
            self.menus = menus

    def close(self) -> None:
        """Stop listening for new images and cancel what runs (variations keep going
        in the archive only if they already started drawing)."""
        stop = getattr(self, "_stop_listening", None)
        if stop is not None:
            stop()
        for task in list(self._tasks):
            task.cancel()
        super().close()
