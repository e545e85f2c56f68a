"""Background work (a click, a follow-up check): kept referenced, its failure shown, not lost.

Shared by the panel's logic and its widgets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["spawn"]


def spawn(
    coro: Coroutine[Any, Any, Any],
    tasks: set[asyncio.Task[Any]],
    on_error: Callable[[str], None],
    *,
    name: str | None = None,
) -> asyncio.Task[Any] | None:
    """Run ``coro`` on the running loop; ``on_error`` gets an unexpected exception in words.

    Without a running loop (a plain script) the coroutine is closed unrun and
    ``None`` is returned; the caller decides what to show.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coro.close()
        return None
    task = loop.create_task(coro, name=name)
    tasks.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            exc = t.exception()
            on_error(f"{type(exc).__name__}: {exc}")

    task.add_done_callback(done)
    return task
