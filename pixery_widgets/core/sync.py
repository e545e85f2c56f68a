"""Run the async core from synchronous code: a plain script or a Jupyter cell.

Outside a running loop, one private loop is kept for the process so the
shared HTTP client survives between calls. Inside a kernel (a loop is
already running), nest-asyncio2 is applied to that loop, lazily, here and
only here, never on import. (It is the maintained fork of nest-asyncio, whose
last release breaks ``asyncio.current_task()`` on Python 3.14.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")

_private_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_patched: set[int] = set()


def _loop_for_scripts() -> asyncio.AbstractEventLoop:
    global _private_loop
    with _lock:
        if _private_loop is None or _private_loop.is_closed():
            _private_loop = asyncio.new_event_loop()
        return _private_loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, wherever we are called from.

    A KeyboardInterrupt (the kernel's interrupt) cancels the coroutine's task and
    lets it clean up before the interrupt propagates.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        loop = _loop_for_scripts()
    elif id(loop) not in _patched:
        import nest_asyncio2

        nest_asyncio2.apply(loop)
        _patched.add(id(loop))
    task = asyncio.ensure_future(coro, loop=loop)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            loop.run_until_complete(task)
        raise
