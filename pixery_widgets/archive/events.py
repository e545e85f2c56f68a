"""Who hears of a new image: listeners told of every row added to any archive's index.

A gallery open in a notebook shows an image the moment it is archived, whoever
saved it (a cell, the panel, a batch, a regenerate). Archives are opened once
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

__all__ = ["announce_saved", "browser", "on_saved", "use_browser"]

log = logging.getLogger(__name__)

Listener = Callable[[Path, str], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def on_saved(listener: Listener) -> Callable[[], None]:
    """Call ``listener(archive_root, record_id)`` after each row is added (in the saving
    thread, which may not be the event loop's); returns a function that stops it."""
    with _lock:
        _listeners.append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return stop


def announce_saved(root: Path, record_id: str) -> None:
    """Tell every listener; one that raises is logged and never reaches the save."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(root, record_id)
        except Exception:
            log.exception("a listener of new archive images failed")


_browser: Callable[..., Any] | None = None


def use_browser(make: Callable[..., Any]) -> None:
    """Set what ``Archive.browse(**options)`` returns: ``make(archive, **options)``."""
    global _browser
    _browser = make


def browser() -> Callable[..., Any] | None:
    return _browser
