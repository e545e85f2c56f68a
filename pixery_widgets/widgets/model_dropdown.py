"""The model menu as a widget: groups, greyed entries with their reason.

ipywidgets' own Dropdown cannot disable single options, so this is an
anywidget over a native ``<select>`` (``static/model_dropdown.js``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import anywidget
import traitlets

from ..core.palette import STATIC, stylesheet
from ..session.menu import MenuEntry, pick_selection

__all__ = ["ModelDropdown"]


def _entry_dict(entry: MenuEntry | Mapping[str, Any]) -> dict[str, Any]:
    return dataclasses.asdict(entry) if isinstance(entry, MenuEntry) else dict(entry)


class ModelDropdown(anywidget.AnyWidget):
    """The model menu. ``value`` is the chosen id; a greyed entry is refused.

    Used alone, ``show(entries)`` applies the menu rule (a user's choice is
    kept across reorders). Inside ``PixeryPanel`` the panel's controller
    decides the menu; this draws it and still refuses a greyed value.
    """

    _esm = STATIC / "model_dropdown.js"
    _css = stylesheet("model_dropdown.css")

    entries = traitlets.List(traitlets.Dict()).tag(sync=True)
    value = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    user_chose = traitlets.Bool(False).tag(sync=True)
    description = traitlets.Unicode("Model").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, entries: Iterable[MenuEntry | Mapping[str, Any]] = (), **kwargs: Any):
        super().__init__(**kwargs)
        if entries:
            self.show(entries)

    _accepted: str | None = None

    @traitlets.validate("value")
    def _refuse_disabled(self, proposal: dict[str, Any]) -> str | None:
        """Changing to an entry that is not enabled is refused: the old value stays.

        Keeping a value whose entry has just been greyed (the user's choice while
        the server is down) is allowed; choosing a greyed one is not.
        """
        new = proposal["value"]
        if new is None or new == self._accepted or self._is_enabled(new, self.entries):
            return new
        return self._accepted

    @traitlets.observe("value")
    def _remember_accepted(self, change: dict[str, Any]) -> None:
        self._accepted = change["new"]

    @staticmethod
    def _is_enabled(value: str, entries: list[dict[str, Any]]) -> bool:
        return any(e.get("id") == value and e.get("enabled") for e in entries)

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """From the front end: if a value was refused, tell the front end the real one."""
        before = self.user_chose
        super().set_state(sync_data)
        if "value" in sync_data and sync_data["value"] != self.value:
            self.user_chose = before
            self.send_state(["value", "user_chose"])

    def show(self, entries: Iterable[MenuEntry | Mapping[str, Any]]) -> None:
        """Replace the menu, keeping or picking the selection by the menu rule."""
        new = [_entry_dict(e) for e in entries]
        as_entries = [MenuEntry(**e) for e in new]
        selection = pick_selection(as_entries, self.value, user_chose=self.user_chose)
        with self.hold_sync():
            self.set_entries(new, selection)

    def set_entries(self, entries: list[dict[str, Any]], value: str | None) -> None:
        """Set menu and value together (the value is checked against the new menu)."""
        with self.hold_trait_notifications():
            self.entries = entries
            self.value = value
