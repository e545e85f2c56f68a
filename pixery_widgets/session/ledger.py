"""What this Python session has spent, across panels, cells and batches.

Cloud images cost their price; a self-hosted image costs the GPU time it used
(``SELFHOSTED_COST_PER_HOUR`` times its seconds, 0 when the rate is not set).
The two are kept apart, so the panel can show them side by side, and the
self-hosted seconds give a batch its estimate before it starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.observers import Observers
from ..core.types import Generation

__all__ = ["DEFAULT_SELFHOSTED_SECONDS", "LEDGER", "CostLedger", "usd"]

#: A guess at one self-hosted image's seconds before any has been made (10–30 s on a 4090).
DEFAULT_SELFHOSTED_SECONDS = 20.0


def usd(value: float) -> str:
    """Dollars as a person reads them: $0.42, $0.0031 (a second of GPU time), $0."""
    if not value:
        return "$0"
    return f"${value:.2f}" if value >= 0.01 else f"${value:.4f}"


@dataclass
class CostLedger:
    """A running total of images made and dollars spent; observers hear every change."""

    total_usd: float = 0.0
    images: int = 0
    #: Of ``total_usd``: what self-hosted images cost in GPU time.
    selfhosted_usd: float = 0.0
    selfhosted_images: int = 0
    selfhosted_seconds: float = 0.0
    _observers: Observers[[CostLedger]] = field(default_factory=Observers, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cloud_usd(self) -> float:
        """What cloud images cost."""
        return self.total_usd - self.selfhosted_usd

    def record(self, generation: Generation) -> None:
        with self._lock:
            self.total_usd += generation.cost_usd
            self.images += 1
            if generation.provider == "selfhosted":
                self.selfhosted_usd += generation.cost_usd
                self.selfhosted_images += 1
                self.selfhosted_seconds += generation.elapsed_s
        self._observers.notify(self)

    def subscribe(self, listener: Callable[[CostLedger], None]) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that unsubscribes."""
        return self._observers.add(listener)

    def seconds_per_selfhosted_image(self) -> float:
        """The self-hosted images' mean seconds this session (a guess before the first)."""
        if not self.selfhosted_images:
            return DEFAULT_SELFHOSTED_SECONDS
        return self.selfhosted_seconds / self.selfhosted_images

    def summary(self) -> str:
        images = f"{self.images} image{'s' if self.images != 1 else ''}"
        if not self.selfhosted_usd:
            return f"{images} · ${self.total_usd:.3f} this session"
        return (
            f"{images} · {usd(self.cloud_usd)} cloud · {usd(self.selfhosted_usd)} "
            "self-hosted GPU time this session"
        )


#: The process-wide ledger, exported as ``px.session_ledger``.
LEDGER = CostLedger()
