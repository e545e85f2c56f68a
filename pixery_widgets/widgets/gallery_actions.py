"""The gallery's commands: selection, the keyboard, and the actions on a record or a selection.

Each ``_do_<name>`` is one command of the front end's protocol (``{"command":
name, ...fields}``); ``Gallery.command`` calls it and shows what it returns
(a sentence) or the error it raises (in words). An action applies to the ids
it is given, else to the record opened, else to the selection, else to the
image under the keyboard cursor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidRequestError, PixeryError
from ..core.tasks import spawn
from ..session.gallery import export_records, plural
from ..session.gallery_keys import key_action, moved

if TYPE_CHECKING:
    from ..archive import ArchiveRecord
    from ..session.gallery import GalleryState

__all__ = ["ActionsMixin"]

#: Most variations one press of "Vary seed" starts.
MAX_VARIATIONS = 4
_MOVES = ("left", "right", "up", "down", "first", "last")


class ActionsMixin:
    """The commands of ``Gallery`` (it provides the traits and the drawing used here)."""

    state: GalleryState
    mode: str
    records: list[dict[str, Any]]
    selected: list[str]
    focus: str
    detail: dict[str, Any] | None
    comparing: dict[str, Any] | None
    busy: str
    _tasks: set[asyncio.Task[Any]]
    _panel: Any

    if TYPE_CHECKING:

        def _sync_records(self) -> None: ...
        def _sync_menus(self) -> None: ...
        def _redraw_detail(self) -> None: ...
        def _say(self, text: str, *, error: bool = False) -> None: ...
        def _do_more(self) -> None: ...
        def _do_close(self) -> str: ...
        def show(self, record: ArchiveRecord) -> None: ...
        def hold_sync(self) -> Any: ...

    # -- what an action is about ----------------------------------------------------------------

    def _targets(self, ids: Sequence[str] | str | None = None) -> list[str]:
        if isinstance(ids, str):
            return [ids]
        if ids:
            return [str(i) for i in ids]
        if self.detail is not None:
            return [self.detail["id"]]
        if self.selected:
            return list(self.selected)
        if self.focus:
            return [self.focus]
        raise InvalidRequestError("Select an image first: click one, or Ctrl+click several.")

    def _one(self, record_id: str | None) -> ArchiveRecord:
        return self.state.get(self._targets(record_id)[0])

    def _after(self, *, menus: bool = False) -> None:
        """Redraw what an action may have changed; a record that left the view closes
        (or, in the details view, the next one opens)."""
        with self.hold_sync():
            opened = self.detail["id"] if self.detail is not None else None
            self._sync_records()
            self.selected = [i for i in self.selected if self.state.index_of(i) >= 0]
            if opened is not None and self.mode == "gallery" and self.state.index_of(opened) < 0:
                self._open_near(self._detail_index)
            else:
                self._redraw_detail()
            if menus:
                self._sync_menus()

    _detail_index = -1

    def _open_near(self, index: int) -> None:
        records = self.state.records
        if not records or index < 0:
            self.detail = None
            return
        self.show(records[min(index, len(records) - 1)])

    def _remember_place(self) -> None:
        self._detail_index = (
            self.state.index_of(self.detail["id"]) if self.detail is not None else -1
        )

    # -- selection and the keyboard ---------------------------------------------------------------

    def _do_focus(self, id: str) -> None:
        self.focus = id

    def _do_select(self, id: str | None = None, how: str = "toggle") -> None:
        """``how``: "toggle" (Ctrl+click), "range" (Shift+click, from the cursor), "only",
        "all" (every loaded image), "clear"."""
        ids = [r.id for r in self.state.records]
        chosen = list(self.selected)
        if how == "clear":
            chosen = []
        elif how == "all":
            chosen = ids
        elif id is None:
            raise InvalidRequestError("Select which image?")
        elif how == "only":
            chosen = [id]
        elif how == "range" and self.focus in ids and id in ids:
            a, b = sorted((ids.index(self.focus), ids.index(id)))
            chosen += [i for i in ids[a : b + 1] if i not in chosen]
        elif how in ("toggle", "range"):
            chosen = [i for i in chosen if i != id] if id in chosen else [*chosen, id]
        else:
            raise InvalidRequestError(f"Unknown way to select: {how!r}.")
        with self.hold_sync():
            self.selected = chosen
            if id is not None and how != "all":
                self.focus = id

    def _do_key(
        self, key: str, columns: int = 1, ctrl: bool = False, shift: bool = False
    ) -> str | None:
        action = key_action(str(key), ctrl=bool(ctrl))
        if action is None:
            return None
        if action in _MOVES:
            self._move(action, int(columns or 1))
        elif action == "open":
            if self.focus and self.detail is None:
                self.show(self.state.get(self.focus))
        elif action == "close":
            self._do_close()
        elif action == "select" and self.focus:
            self._do_select(self.focus, "range" if shift else "toggle")
        elif action == "select_all":
            self._do_select(how="all")
        else:
            return getattr(self, f"_do_{'toggle_star' if action == 'star' else action}")()
        return None

    def _move(self, action: str, columns: int) -> None:
        if self.mode != "gallery" or (self.comparing is not None and self.detail is None):
            return
        records = self.state.records
        if self.detail is not None:  # left and right page through the details
            if action not in ("left", "right"):
                return
            columns = 1
        index = self.state.index_of(self.detail["id"] if self.detail else self.focus)
        target = moved(index, action, columns=columns, count=len(records))
        if self.state.has_more and (target >= len(records) - columns or action == "last"):
            self._do_more()
            records = self.state.records
            if index == target and action in ("right", "down"):
                target = moved(index, action, columns=columns, count=len(records))
        if target < 0:
            return
        if self.detail is not None:
            self.show(records[target])
        else:
            self.focus = records[target].id

    # -- star, tag, trash -----------------------------------------------------------------------

    def _do_star(self, ids: Sequence[str] | None = None, starred: bool = True) -> str:
        targets = self._targets(ids)
        self._remember_place()
        said = self.state.star(targets, starred=bool(starred))
        self._after()
        return said

    def _do_unstar(self, ids: Sequence[str] | None = None) -> str:
        return self._do_star(ids, starred=False)

    def _do_toggle_star(self, ids: Sequence[str] | None = None) -> str:
        targets = self._targets(ids)
        self._remember_place()
        said = self.state.toggle_star(targets)
        self._after()
        return said

    def _do_tag(self, tag: str | Sequence[str], ids: Sequence[str] | None = None) -> str:
        said = self.state.tag(self._targets(ids), [tag] if isinstance(tag, str) else tag)
        self._after(menus=True)
        return said

    def _do_untag(self, tag: str | Sequence[str], ids: Sequence[str] | None = None) -> str:
        targets = self._targets(ids)
        self._remember_place()
        said = self.state.untag(targets, [tag] if isinstance(tag, str) else tag)
        self._after(menus=True)
        return said

    def _do_trash(self, ids: Sequence[str] | None = None) -> str:
        targets = self._targets(ids)
        self._remember_place()
        said = self.state.trash(targets)
        self._after(menus=True)
        return f"{said} Undo (u) brings {'it' if len(targets) == 1 else 'them'} back."

    def _do_restore(self, ids: Sequence[str] | None = None) -> str:
        targets = self._targets(ids)
        self._remember_place()
        said = self.state.restore(targets)
        self._after(menus=True)
        return said

    def _do_undo(self) -> str:
        said = self.state.undo()
        self._after(menus=True)
        return said

    def _do_empty_trash(self) -> str:
        said = self.state.empty_trash()
        self.detail = None
        self._after(menus=True)
        return said

    def _do_forget_missing(self) -> str:
        said = self.state.forget_missing()
        self.detail = None
        self._after(menus=True)
        return said

    def _do_export(self, folder: str = "", ids: Sequence[str] | None = None) -> str:
        records = [self.state.get(i) for i in self._targets(ids)]
        return export_records(records, folder).message

    # -- into the panel, and new images -------------------------------------------------------

    def _need_panel(self, what: str) -> Any:
        if self._panel is None:
            raise InvalidRequestError(
                f"{what} needs a panel: make the gallery with px.Gallery(panel=panel) "
                "or set gallery.panel = panel."
            )
        return self._panel

    def _do_remix(self, id: str | None = None) -> str:
        record = self._one(id)
        notes = self._need_panel("Remix").remix(record)
        said = f"Loaded {record.id} into the panel: change what you like, then Generate."
        return " ".join([said, *notes])

    def _do_reference(self, id: str | None = None) -> str:
        record = self._one(id)
        panel = self._need_panel("Use as reference")
        panel.use_reference(record.png_bytes(), name=record.path.name)
        return f"{record.id} is now the panel's reference image."

    def _do_vary(self, ids: Sequence[str] | None = None) -> str:
        records = [self.state.get(i) for i in self._targets(ids)[:MAX_VARIATIONS]]
        for record in records:
            task = spawn(self._vary(record), self._tasks, self._vary_failed, name="pixery-vary")
            if task is None:  # no event loop (a script): make it here
                record.regenerate(seed=None)
        if any(not t.done() for t in self._tasks):
            self.busy = f"Making {plural(len(records), 'variation')} with a new seed…"
            return ""
        return f"Made {plural(len(records), 'variation')} with a new seed."

    async def _vary(self, record: ArchiveRecord) -> None:
        try:
            made = await record.aregenerate(seed=None)
        except PixeryError as exc:
            self._say(f"The variation of {record.id} failed: {exc.message}", error=True)
        else:
            self._say(f"Made a variation of {record.id} (seed {made.seed}): it is at the top.")
        finally:
            if not [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]:
                self.busy = ""

    def _vary_failed(self, text: str) -> None:
        self.busy = ""
        self._say(f"The variation failed: {text}", error=True)

    async def wait_idle(self) -> None:
        """Wait until the variations started here are made (tests, scripts)."""
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
