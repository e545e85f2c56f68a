"""What this process has in flight on each self-hosted server, and what GPU time costs.

A server draws one image at a time and blocks every other request meanwhile,
so a health check that times out while this process waits for an image there
means "busy", not "offline"; a pool sends the next image to the server with the
shortest queue. Both read the count kept here, per server URL. Listeners hear
every change, on the event loop, so a display can show which server is drawing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..core.observers import Observers

__all__ = ["generations_in_flight", "gpu_cost", "track_in_flight", "watch_in_flight"]

_in_flight: Counter[str] = Counter()
#: Told ``(url, count)`` whenever the generations in flight on a server change.
_in_flight_observers: Observers[[str, int]] = Observers()


def generations_in_flight(url: str) -> int:
    """How many generations this process is waiting for on the server at ``url``."""
    return _in_flight[url]


def watch_in_flight(listener: Callable[[str, int], None]) -> Callable[[], None]:
    """Call ``listener(url, count)`` on the event loop each time a generation starts or
    ends on a server; returns the function that stops it."""
    return _in_flight_observers.add(listener)


def _tell_in_flight(url: str) -> None:
    _in_flight_observers.notify(url, _in_flight[url])  # a display's trouble is only logged


@contextmanager
def track_in_flight(url: str) -> Iterator[None]:
    _in_flight[url] += 1
    _tell_in_flight(url)
    try:
        yield
    finally:
        _in_flight[url] -= 1
        if _in_flight[url] <= 0:
            del _in_flight[url]
        _tell_in_flight(url)


def gpu_cost(seconds: float, cost_per_hour: float | None) -> float:
    """What ``seconds`` of one server's time cost at ``cost_per_hour`` US dollars (0 if unset)."""
    return cost_per_hour * seconds / 3600 if cost_per_hour else 0.0
