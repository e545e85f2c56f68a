"""Run the simulator over real loopback HTTP from inside a test or a notebook.

uvicorn runs in a daemon thread with its own event loop, on a socket we bind
ourselves so the port is known before the first request and can be reused by a
restart.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import uvicorn

from ._app import create_app
from ._config import SimConfig
from ._faults import Fault, fault_kind, normalize_route
from ._state import LoggedRequest, SimState

# What uvicorn logs when a fault breaks an answer on purpose, or when stop() cancels a hang.
_EXPECTED = ("ASGI callable returned without completing response.",)


class _QuietAboutFaults(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() in _EXPECTED:
            return False
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


def quiet_uvicorn_logs() -> None:
    """Install (once) the filter that hides uvicorn's noise about deliberate faults."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietAboutFaults) for f in logger.filters):
        logger.addFilter(_QuietAboutFaults())


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket; port 0 picks a free one. SO_REUSEADDR allows a quick restart.

    The protocol must be given as IPPROTO_TCP: asyncio only disables Nagle's algorithm
    on accepted sockets whose proto says TCP, and with proto 0 every small answer
    waits about 40 ms for the client's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def reset_transport(transport: Any) -> None:
    """Drop a connection with a TCP RST, as when the server process dies."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _close(server: uvicorn.Server) -> None:
    """Stop listening and end idle keep-alive connections, as uvicorn's shutdown would
    (requests in flight finish, then their connections close)."""
    for listener in getattr(server, "servers", []):
        listener.close()
    for connection in list(server.server_state.connections):
        connection.shutdown()


def _drop(server: uvicorn.Server) -> None:
    """Stop listening, reset every connection and cancel what was being served."""
    for listener in getattr(server, "servers", []):
        listener.close()
    for connection in list(server.server_state.connections):
        reset_transport(connection.transport)  # type: ignore[union-attr]
    for task in list(server.server_state.tasks):
        task.cancel()


class SimServer:
    """A simulator served on ``url`` from a background thread.

    ``config`` is live: change it (or call ``set_fault``) while the server runs.
    ``request_log`` keeps every API request (not /_sim/ ones) across restarts.
    """

    def __init__(
        self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.request_log: list[LoggedRequest] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state: SimState | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True from start() until stop(), kill() or an idle exit."""
        return self._server is not None and self._thread is not None and self._thread.is_alive()

    @property
    def current_model(self) -> str | None:
        return self._state.current_model if self._state else None

    @current_model.setter
    def current_model(self, name: str | None) -> None:
        """Load or unload a model at once (no switch delay), e.g. to test 'no_model_loaded'."""
        if self._state is None:
            raise RuntimeError("the simulator is not running")
        self._state.current_model = name

    def start(self, timeout: float = 10.0) -> SimServer:
        """Serve in a daemon thread and return once uvicorn accepts connections."""
        if self.running:
            raise RuntimeError(f"the simulator is already running on {self.url}")
        quiet_uvicorn_logs()
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        app = create_app(
            self.config, request_log=self.request_log, on_idle_exit=self._exit_when_idle
        )
        self._state = app.state.sim
        server = uvicorn.Server(
            uvicorn.Config(
                app, log_config=None, log_level="warning", access_log=False, http="h11", ws="none"
            )
        )
        self._server, self._loop = server, None
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"pixery-sim:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the simulator did not start on {self.url}")
            time.sleep(0.005)
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        asyncio.run(main())

    def stop(self, grace: float = 0.3) -> None:
        """Stop at once for new requests; give requests in flight ``grace`` seconds, then drop them.

        Returns as soon as the port is closed; uvicorn finishes its own shutdown in
        the background (it has nothing left to wait for), which keeps tests fast.
        """
        server = self._detach()
        if server is None:
            return
        self._in_loop(lambda: _close(server))
        deadline = time.monotonic() + grace
        while server.server_state.tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.server_state.tasks:
            self._in_loop(lambda: _drop(server))

    def kill(self) -> None:
        """Die abruptly: the port closes and every open connection gets a TCP reset."""
        server = self._detach()
        if server is not None:
            self._in_loop(lambda: _drop(server))

    def restart(self) -> SimServer:
        """Stop, then serve again on the same port with a fresh state (as a rebooted server)."""
        self.stop()
        return self.start()

    def set_fault(self, route: str, kind: str, times: int | None = None, **options: Any) -> Fault:
        """Arm a fault on a route ("*" for all); ``options`` are Fault's delay and size."""
        fault = Fault(fault_kind(kind), times, **options)
        self.config.faults[normalize_route(route)] = fault
        return fault

    def clear_faults(self, route: str | None = None) -> None:
        if route is None:
            self.config.faults.clear()
        else:
            self.config.faults.pop(normalize_route(route), None)

    def _exit_when_idle(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def _detach(self) -> uvicorn.Server | None:
        """Forget the running server and tell it to exit (uvicorn polls this flag)."""
        server, self._server = self._server, None
        if server is not None:
            server.should_exit = True
        return server

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the server's event loop and wait for it (uvicorn is not thread-safe)."""
        loop, done = self._loop, threading.Event()
        if loop is None or self._thread is None or not self._thread.is_alive():
            return

        def run() -> None:
            try:
                action()
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop closed meanwhile
            return
        done.wait(1.0)

    def __enter__(self) -> SimServer:
        return self if self.running else self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


@contextmanager
def run_simulator(
    config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[SimServer]:
    """``with run_simulator(SimConfig(gen_seconds=0)) as sim:`` serves on ``sim.url`` meanwhile."""
    sim = SimServer(config, host=host, port=port).start()
    try:
        yield sim
    finally:
        sim.stop()
