"""What a running simulated server remembers between requests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from fastapi import HTTPException

from ._config import SimConfig
from ._faults import not_downloaded_detail, unknown_model_detail


class LoggedRequest(NamedTuple):
    """One request as the server saw it (tests check headers for leaked API keys)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any  # the parsed body, or None when there was none or it was not JSON


class SimState:
    """The loaded model, the one-at-a-time lock, the idle clock and the request log."""

    def __init__(
        self,
        config: SimConfig,
        request_log: list[LoggedRequest] | None = None,
        on_idle_exit: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.request_log: list[LoggedRequest] = [] if request_log is None else request_log
        self.on_idle_exit = on_idle_exit
        self.current_model: str | None = config.start_loaded
        self.lock = asyncio.Lock()  # held while a request is handled: the GPU box has one worker
        self.in_flight = 0
        self.last_activity = time.monotonic()

    def touch(self) -> float:
        """Reset the idle clock; return how long it had been idle."""
        now = time.monotonic()
        idle, self.last_activity = now - self.last_activity, now
        return idle

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_activity

    def log_request(self, scope: dict[str, Any], body: bytes) -> None:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.request_log.append(LoggedRequest(scope["method"], scope["path"], headers, parsed))

    def check_model(self, name: str) -> None:
        available = self.config.available_models
        if name not in available:
            raise HTTPException(400, unknown_model_detail(name, available))

    async def load(self, name: str) -> None:
        """Make ``name`` the model in GPU memory, taking switch_seconds if it changes."""
        self.check_model(name)
        if name == self.current_model:
            return
        if name in self.config.missing:
            raise HTTPException(503, not_downloaded_detail(name))
        self.current_model = None  # the old one is unloaded first, as on the GPU
        await asyncio.sleep(self.config.switch_seconds)
        self.current_model = name

    async def watch_idle(self) -> None:
        """Shut the server down after idle_timeout_minutes without requests, if asked to."""
        while True:
            await asyncio.sleep(0.1)
            config = self.config
            expired = self.idle_seconds() >= config.idle_timeout_minutes * 60
            if config.exit_when_idle and expired and self.in_flight == 0 and self.on_idle_exit:
                self.on_idle_exit()
                return
