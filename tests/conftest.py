# ---------------------------------------------------------------------------
# Simulator fixtures (pixery_widgets.sim): real HTTP over loopback, no GPU.
# ---------------------------------------------------------------------------
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pixery_widgets.providers.servers import forget_servers
from pixery_widgets.providers.status import forget_known_models
from pixery_widgets.sim import SimConfig, SimPool, SimServer

pytest_plugins = ["_secrets_plugin"]  # sentinel API keys, and a sweep for them


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    """Start simulators from SimConfig keyword arguments (plus ``port=``);
    gen_seconds and switch_seconds default to 0. All are stopped at teardown."""
    started: list[SimServer] = []

    def start(port: int = 0, **config: Any) -> SimServer:
        config.setdefault("gen_seconds", 0)
        config.setdefault("switch_seconds", 0)
        server = SimServer(SimConfig(**config), port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def pool_factory() -> Iterator[Callable[..., SimPool]]:
    """Start pools of ``n`` simulators from SimConfig keyword arguments (plus
    ``start_loaded=``); gen_seconds and switch_seconds default to 0. All stop at teardown."""
    started: list[SimPool] = []

    def start(n: int, start_loaded: tuple[str | None, ...] = (), **config: Any) -> SimPool:
        config.setdefault("gen_seconds", 0)
        config.setdefault("switch_seconds", 0)
        pool = SimPool(n, SimConfig(**config), start_loaded=start_loaded).start()
        started.append(pool)
        return pool

    yield start
    for pool in started:
        pool.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., SimServer]) -> SimServer:
    """A running simulator that answers at once (gen_seconds=0, switch_seconds=0)."""
    return sim_factory()


@pytest.fixture
def hanging_port() -> Iterator[str]:
    """URL of a server that accepts connections and never answers (a stuck box)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept_forever() -> None:
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    done.set()
    thread.join(1.0)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def closed_port_url() -> str:
    """URL of a port nothing listens on: connecting is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- end of simulator fixtures ----------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the slow browser tests last, so quick failures show first."""
    browser_dir = Path(__file__).parent / "browser"
    items.sort(key=lambda item: browser_dir in Path(str(item.path)).parents)


@pytest.fixture(autouse=True)
def _archive_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test archives into its own temp dir and reads no .env from the repo or home."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIXERY_ARCHIVE_DIR", str(tmp_path / "pixery-out"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(autouse=True)
def _fresh_session_memory() -> Iterator[None]:
    """Each test starts without the session's memory of server model lists and statuses."""
    forget_known_models()
    forget_servers()
    yield
    forget_known_models()
    forget_servers()
