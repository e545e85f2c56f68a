"""``_base.within``: one deadline for a whole exchange, on Python 3.11+ and on the 3.10 path.

CI runs 3.11, so the fallback for 3.10 (``asyncio.wait`` instead of ``asyncio.timeout``)
is exercised here by making the module believe it runs on 3.10.
"""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from pixery_widgets.providers import _base


@pytest.fixture(params=["3.11+", "3.10"])
def within(request, monkeypatch):
    if request.param == "3.10":
        monkeypatch.setattr(_base, "sys", types.SimpleNamespace(version_info=(3, 10, 0)))
    else:
        assert sys.version_info >= (3, 11), "CI runs 3.11; this branch needs asyncio.timeout"
    return _base.within


async def _work(seconds: float, events: list[str]) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        events.append("inner cancelled")
        raise
    return "answer"


def test_an_exchange_within_its_deadline_returns_its_result(within):
    assert asyncio.run(within(1.0, _work(0.01, []))) == "answer"
    assert asyncio.run(within(None, _work(0.01, []))) == "answer"


def test_a_deadline_that_passes_raises_timeout_and_cancels_the_exchange(within):
    events: list[str] = []

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await within(0.05, _work(5.0, events))

    asyncio.run(main())
    assert events == ["inner cancelled"]


def test_cancelling_the_caller_cancels_the_exchange_and_is_not_swallowed(within):
    events: list[str] = []

    async def main() -> None:
        task = asyncio.create_task(within(5.0, _work(5.0, events)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # let the inner task see its cancellation (3.10 path)

    asyncio.run(main())
    assert events == ["inner cancelled"]
