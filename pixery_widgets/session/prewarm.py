"""Pre-warming: loading a local model on the user's server before its first image.

A checkpoint switch costs the server several seconds. The panel asks for it
(``/switch-model``) as soon as the user picks a model that is not loaded, so
the first image comes quickly; meanwhile the watcher shows the server busy
rather than checking a server that cannot answer. With several servers, the
model is loaded on the server its next image would go to (``PoolWatcher.prewarm_url``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.errors import PixeryError
from ..core.types import ServerState
from ..providers.selfhosted import SelfHostedClient
from .pool_watcher import PoolWatcher
from .watcher import ServerWatcher

__all__ = ["prewarm", "prewarm_url"]


def prewarm_url(watcher: PoolWatcher | ServerWatcher, model: str) -> str | None:
    """The server to load ``model`` on; ``None`` when there is nothing to do
    (no server, one that is not healthy, or ``model`` is the one loaded; on a
    pool, the rule of ``PoolWatcher.prewarm_url``)."""
    if isinstance(watcher, PoolWatcher) and watcher.is_pool:
        return watcher.prewarm_url(model)
    status = watcher.status
    url = watcher.settings.selfhosted_url
    if url is None or status.state is not ServerState.HEALTHY:
        return None
    if status.health is not None and status.health.current_model == model:
        return None
    return url


async def prewarm(
    watcher: PoolWatcher | ServerWatcher, url: str, model: str, say: Callable[[str], None]
) -> None:
    """Switch the server at ``url`` to ``model`` (shown busy meanwhile: on a pool, that
    server alone), say how it went, then check again."""
    what = f"loading {model}"
    try:
        with (
            watcher.work_on(url, what)
            if isinstance(watcher, PoolWatcher)
            else watcher.own_work(what)
        ):
            await SelfHostedClient(url).switch_model(model)
    except PixeryError as exc:
        say(f"Could not load {model}: {exc.message}")
    else:
        say(f"{model} is loaded on your server.")
    await watcher.check_now()
