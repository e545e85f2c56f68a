"""What this Python session has spent, across panels, cells and batches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.types import Generation

__all__ = ["LEDGER", "CostLedger"]


@dataclass
class CostLedger:
    """A running total of images made and dollars spent; observers hear every change."""

    total_usd: float = 0.0
    images: int = 0
    _listeners: list[Callable[[CostLedger], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, generation: Generation) -> None:
        with self._lock:
            self.total_usd += generation.cost_usd
            self.images += 1
        for listener in list(self._listeners):
            listener(self)

    def subscribe(self, listener: Callable[[CostLedger], None]) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def summary(self) -> str:
        return f"{self.images} image{'s' if self.images != 1 else ''} · ${self.total_usd:.3f} this session"


#: The process-wide ledger, exported as ``px.session_ledger``.
LEDGER = CostLedger()
