"""Background work (a click, a follow-up check, a batch's saves): the one way to start it.

A task on the event loop that nobody awaits must be kept referenced (the loop
holds only a weak reference, so it could be garbage-collected mid-way) and its
failure must be seen. ``spawn`` does both for every such task in the package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["spawn"]

log = logging.getLogger(__name__)


def spawn(
    coro: Coroutine[Any, Any, Any],
    tasks: set[asyncio.Task[Any]],
    on_error: Callable[[str], None] | None = None,
    *,
    name: str | None = None,
) -> asyncio.Task[Any] | None:
    """Run ``coro`` on the running loop as a task kept in ``tasks`` until it ends.

    An unexpected exception is logged with its traceback and, in words, given to
    ``on_error`` (to show it where the user looks). A cancel is not a failure,
    nor is an interrupt (``KeyboardInterrupt``: handled where it was raised).
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
        if t.cancelled():
            return
        exc = t.exception()  # retrieved, so asyncio does not warn about it later
        if not isinstance(exc, Exception):
            return
        log.error("Background task %s failed", t.get_name(), exc_info=exc)
        if on_error is not None:
            on_error(f"{type(exc).__name__}: {exc}")

    task.add_done_callback(done)
    return task
