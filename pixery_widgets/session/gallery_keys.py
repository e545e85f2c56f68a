"""The gallery's keyboard, as a table: which key does what, and where the cursor goes.

The front end sends every key it does not handle itself as a ``key`` command
(``{"command": "key", "key": "ArrowRight", "columns": 5}``); these pure
functions decide, so the keyboard is tested without a browser.
"""

from __future__ import annotations

__all__ = ["KEYS", "key_action", "moved"]

#: What each key does (``KeyboardEvent.key`` names); "ctrl+" when Ctrl or Cmd is held.
KEYS = {
    "ArrowLeft": "left",
    "ArrowRight": "right",
    "ArrowUp": "up",
    "ArrowDown": "down",
    "Home": "first",
    "End": "last",
    "Enter": "open",
    "Escape": "close",
    "s": "star",
    "S": "star",
    "Delete": "trash",
    "Backspace": "trash",
    " ": "select",
    "u": "undo",
    "ctrl+z": "undo",
    "ctrl+a": "select_all",
}


def key_action(key: str, *, ctrl: bool = False) -> str | None:
    """The action of a key (``None``: not the gallery's, the notebook keeps it)."""
    if ctrl:
        return KEYS.get(f"ctrl+{key.lower()}")
    return KEYS.get(key)


def moved(index: int, action: str, *, columns: int, count: int) -> int:
    """Where the cursor goes from ``index`` (-1: none yet) in a grid of ``count`` cells,
    ``columns`` wide; it stops at the edges."""
    if count <= 0:
        return -1
    if index < 0:
        return 0 if action != "last" else count - 1
    columns = max(1, columns)
    step = {"left": -1, "right": 1, "up": -columns, "down": columns}.get(action)
    if action == "first":
        return 0
    if action == "last":
        return count - 1
    if step is None:
        return index
    target = index + step
    if 0 <= target < count:
        return target
    if action == "down":  # a short last row: go to its last cell
        return count - 1 if index // columns < (count - 1) // columns else index
    return index
