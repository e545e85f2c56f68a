"""Several simulators in one process, on consecutive ports: a small farm of GPU boxes.

A client that spreads a batch over ``SELFHOSTED_API_URL="url1,url2,url3"`` needs
several servers, and its tests need to take one down mid-batch and bring it back
on the same port. Each server is a SimServer with its own app, state and copy of
the config, so what happens on one (a model switch, a fault used up, a config
change) does not show on another.

    with SimPool(3, SimConfig(gen_seconds=0)) as pool:
        os.environ["SELFHOSTED_API_URL"] = pool.selfhosted_api_url
        pool.stop(1)  # port refuses from here on
        pool.start(1)  # listening again on the same port
"""

from __future__ import annotations

import copy
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType

from ._config import SimConfig
from ._server import SimServer


def pool_configs(
    n: int, config: SimConfig | None = None, start_loaded: Sequence[str | None] = ()
) -> list[SimConfig]:
    """``n`` independent copies of ``config``; ``start_loaded`` names are dealt out in
    turn (cycling when there are fewer names than servers)."""
    if n < 1:
        raise ValueError(f"a pool needs at least one server, not {n}")
    base = config or SimConfig()
    loaded = list(start_loaded) or [base.start_loaded]
    # deepcopy: faults count down and lists change live, per server.
    return [replace(copy.deepcopy(base), start_loaded=loaded[i % len(loaded)]) for i in range(n)]


@contextmanager
def interrupt_event() -> Iterator[threading.Event]:
    """An event that Ctrl-C and SIGTERM set instead of ending the program, meanwhile
    (main thread only; the previous handlers come back after)."""
    interrupted = threading.Event()
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda *_: interrupted.set()) for signum in signums}
    try:
        yield interrupted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class SimPool:
    """``n`` simulators on ports ``port``, ``port + 1``, ... (free ports when ``port`` is 0).

    ``servers`` are plain SimServers: their ``config``, ``request_log`` and
    ``set_fault`` work as usual. A server stopped and started again keeps its port
    and request log and gets a fresh state, as a rebooted machine would.
    """

    def __init__(
        self,
        n: int,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_loaded: Sequence[str | None] = (),
    ) -> None:
        configs = pool_configs(n, config, start_loaded)
        self.servers = [
            SimServer(c, host=host, port=port + i if port else 0) for i, c in enumerate(configs)
        ]

    @property
    def urls(self) -> list[str]:
        """Each server's URL (ports of a pool on port 0 are known once it has started)."""
        return [server.url for server in self.servers]

    @property
    def selfhosted_api_url(self) -> str:
        """The value for SELFHOSTED_API_URL: every URL, joined with commas."""
        return ",".join(self.urls)

    def start(self, i: int | None = None, timeout: float = 10.0) -> SimPool:
        """Start server ``i`` (or every server) unless it runs; return once it listens.

        When one of several cannot start (its port is taken), those started by this
        call are stopped again and the error is raised.
        """
        started: list[SimServer] = []
        try:
            for server in self._chosen(i):
                if not server.running:
                    started.append(server.start(timeout))
        except BaseException:
            for server in started:
                server.stop()
            raise
        return self

    def stop(self, i: int | None = None, grace: float = 0.3) -> None:
        """Stop server ``i`` (or all); returns once its port refuses connections."""
        for server in self._chosen(i):
            server.stop(grace)

    def kill(self, i: int | None = None) -> None:
        """Kill server ``i`` (or all): the port closes and open connections get a TCP reset."""
        for server in self._chosen(i):
            server.kill()

    def restart(self, i: int | None = None) -> SimPool:
        """Stop, then start server ``i`` (or all) on the same port with a fresh state."""
        for server in self._chosen(i):
            server.restart()
        return self

    @property
    def running(self) -> list[bool]:
        return [server.running for server in self.servers]

    def wait(self, interrupted: threading.Event) -> bool:
        """Block until ``interrupted`` is set (True) or every server has exited by itself
        when idle (False). The servers keep running: stop() them after."""
        while not interrupted.wait(0.2) and any(self.running):
            pass
        return interrupted.is_set()

    def _chosen(self, i: int | None) -> list[SimServer]:
        return self.servers if i is None else [self.servers[i]]

    def __len__(self) -> int:
        return len(self.servers)

    def __getitem__(self, i: int) -> SimServer:
        return self.servers[i]

    def __iter__(self) -> Iterator[SimServer]:
        return iter(self.servers)

    def __enter__(self) -> SimPool:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
