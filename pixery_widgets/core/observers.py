"""Listeners of a changing thing (the server's status, the panel, a batch, the ledger).

One list and one policy for all of them: listeners are called in the order they
were added; one that raises is logged with its traceback and the others are
still called, so a broken display never stops the work it displays, and its
failure is not lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

__all__ = ["Observers"]

log = logging.getLogger(__name__)

P = ParamSpec("P")


class Observers(Generic[P]):
    """Callables to tell about a change: ``add``, ``remove``, ``notify(*args)``."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: list[Callable[P, object]] = []

    def add(self, listener: Callable[P, object]) -> Callable[[], None]:
        """Call ``listener`` on every ``notify``; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self.remove(listener)

    def remove(self, listener: Callable[P, object]) -> None:
        """Stop calling ``listener``; nothing happens if it was not added."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def clear(self) -> None:
        self._listeners.clear()

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every listener; one that raises is logged and the rest still run."""
        for listener in list(self._listeners):
            try:
                listener(*args, **kwargs)
            except Exception:
                log.exception("A listener failed: %r", listener)

    def __len__(self) -> int:
        return len(self._listeners)

    def __bool__(self) -> bool:
        return bool(self._listeners)
