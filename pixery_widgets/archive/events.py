"""Who hears of a new or changed image: listeners told of every row added or changed.

A gallery open in a notebook shows an image the moment it is archived, whoever
saved it (a cell, the panel, a batch, a regenerate), and a star given in the panel. Archives are opened once
per folder, but a user may hold a second ``Archive`` on the same folder: so
listeners hear of every archive, with its folder, and pick their own.

``Archive.browse()`` opens a gallery, which lives in the widgets layer above:
it is handed over through ``use_browser``, as ``use_generator`` hands over
``agenerate``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "announce_changed",
    "announce_saved",
    "browser",
    "on_changed",
    "on_saved",
    "use_browser",
]

log = logging.getLogger(__name__)

Listener = Callable[[Path, str], None]

#: Listeners by what they hear of: "saved" (a new row), "changed" (star, tags, trash).
_listeners: dict[str, list[Listener]] = {"saved": [], "changed": []}
_lock = threading.Lock()


def _subscribe(kind: str, listener: Listener) -> Callable[[], None]:
    with _lock:
        _listeners[kind].append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners[kind]:
                _listeners[kind].remove(listener)

    return stop


def on_saved(listener: Listener) -> Callable[[], None]:
    """Call ``listener(archive_root, record_id)`` after each row is added (in the saving
    thread, which may not be the event loop's); returns a function that stops it."""
    return _subscribe("saved", listener)


def on_changed(listener: Listener) -> Callable[[], None]:
    """As ``on_saved``, after a record is starred, tagged, trashed or restored."""
    return _subscribe("changed", listener)


def _announce(kind: str, root: Path, record_id: str) -> None:
    """Tell every listener; one that raises is logged and never reaches the archive."""
    with _lock:
        listeners = list(_listeners[kind])
    for listener in listeners:
        try:
            listener(root, record_id)
        except Exception:
            log.exception("a listener of archive %s images failed", kind)


def announce_saved(root: Path, record_id: str) -> None:
    _announce("saved", root, record_id)


def announce_changed(root: Path, record_id: str) -> None:
    _announce("changed", root, record_id)


_browser: Callable[..., Any] | None = None


def use_browser(make: Callable[..., Any]) -> None:
    """Set what ``Archive.browse(**options)`` returns: ``make(archive, **options)``."""
    global _browser
    _browser = make


def browser() -> Callable[..., Any] | None:
    return _browser
