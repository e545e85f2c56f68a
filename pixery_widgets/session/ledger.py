"""What this Python session has spent, across panels, cells and batches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.observers import Observers
from ..core.types import Generation

__all__ = ["LEDGER", "CostLedger"]


@dataclass
class CostLedger:
    """A running total of images made and dollars spent; observers hear every change."""

    total_usd: float = 0.0
    images: int = 0
    _observers: Observers[[CostLedger]] = field(default_factory=Observers, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, generation: Generation) -> None:
        with self._lock:
            self.total_usd += generation.cost_usd
            self.images += 1
        self._observers.notify(self)

    def subscribe(self, listener: Callable[[CostLedger], None]) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that unsubscribes."""
        return self._observers.add(listener)

    def summary(self) -> str:
        return f"{self.images} image{'s' if self.images != 1 else ''} · ${self.total_usd:.3f} this session"


#: The process-wide ledger, exported as ``px.session_ledger``.
LEDGER = CostLedger()
