"""Shared test helpers for panels driven on a real event loop against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pixery_widgets.core.types import ServerState
from pixery_widgets.widgets import PixeryPanel

__all__ = ["ready", "run", "until"]


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    """Wait until ``predicate()`` holds; an ``AssertionError`` naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def run(body: Callable[[], Any]) -> Any:
    """Run the coroutine function ``body`` on a fresh event loop."""
    return asyncio.run(body())


def ready(panel: PixeryPanel) -> bool:
    """The server is healthy and no check is under way."""
    return panel.server_status.state is ServerState.HEALTHY and not panel.watcher.checking
