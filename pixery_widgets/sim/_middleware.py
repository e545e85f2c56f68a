"""The ASGI layer around the routes: one-at-a-time serving, the idle clock, the request
log, and faults put on the wire.

It is a pure ASGI middleware (not a Starlette BaseHTTPMiddleware) because faults
such as a half-sent body or a byte-by-byte trickle need control of each
``http.response.*`` message that uvicorn writes to the socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._faults import (
    HTML_500_BODY,
    JSON_REWRITES,
    STATUS_DETAILS,
    Fault,
    FaultKind,
    normalize_route,
    rewrite_json,
    take_fault,
)

if TYPE_CHECKING:
    from ._state import SimState

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_sim/"
IDLE_KEY = "pixery_sim.idle_seconds"  # scope key: idle time seen when the request arrived


class Captured:
    """A complete answer held back so a fault can rewrite it before it is sent."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def with_body(
        self, body: bytes, content_type: bytes | None = None
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """Headers and body for a changed body (and, optionally, a changed content type)."""
        dropped = {b"content-length", b"content-type"} if content_type else {b"content-length"}
        headers = [(k, v) for k, v in self.headers if k.lower() not in dropped]
        if content_type:
            headers.append((b"content-type", content_type))
        headers.append((b"content-length", str(len(body)).encode()))
        return headers, body


class SimMiddleware:
    """Serves API requests one at a time under ``state.lock``, like the real server
    whose pipeline blocks its only worker; /_sim/ control requests skip all of it."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.state
        scope[IDLE_KEY] = state.touch()
        state.in_flight += 1
        try:
            body = await _read_body(receive)
            state.log_request(scope, body)
            replay = _replaying(body, receive)
            fault = take_fault(state.config.faults, scope["path"])
            if fault is None:
                async with state.lock:
                    await self.app(scope, replay, send)
            else:
                await self._faulty(fault, scope, replay, send)
        finally:
            state.in_flight -= 1
            state.touch()

    async def _normal(self, scope: Scope, receive: Receive) -> Captured:
        captured = Captured()
        async with self.state.lock:
            await self.app(scope, receive, captured.send)
        return captured

    async def _faulty(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        kind = fault.kind
        if kind is FaultKind.HANG:
            await asyncio.Event().wait()  # until the server stops and cancels us
        elif kind is FaultKind.HTML_500:
            await _send_all(send, 500, [(b"content-type", b"text/html")], HTML_500_BODY)
        elif kind in STATUS_DETAILS:
            status, detail = STATUS_DETAILS[kind]
            await _send_all(
                send, status, [(b"content-type", b"application/json")], _dumps({"detail": detail})
            )
        elif kind is FaultKind.HUGE_BODY:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await _stream(send, receive, _huge_json(fault.size), 0.0)
        else:
            answer = await self._normal(scope, receive)
            await self._rewritten(fault, normalize_route(scope["path"]), answer, receive, send)

    async def _rewritten(
        self, fault: Fault, route: str, answer: Captured, receive: Receive, send: Send
    ) -> None:
        kind = fault.kind
        if kind is FaultKind.SLOW_BYTES:
            headers, body = answer.with_body(answer.body)
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await _stream(send, receive, (body[i : i + 1] for i in range(len(body))), fault.delay)
        elif kind is FaultKind.RESET_MID_BODY:
            headers, body = answer.with_body(answer.body)  # announces the full length...
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            # ...and returns mid-body: uvicorn then closes the connection.
        elif kind is FaultKind.WRONG_CONTENT_TYPE:
            headers, body = answer.with_body(answer.body, b"text/html; charset=utf-8")
            await _send_all(send, answer.status, headers, body)
        elif kind is FaultKind.TRUNCATED_JSON:
            headers, body = answer.with_body(answer.body[: len(answer.body) // 2])
            await _send_all(send, answer.status, headers, body)
        elif kind in JSON_REWRITES:
            try:
                data = json.loads(answer.body)
            except ValueError:
                body = answer.body
            else:
                body = _dumps(rewrite_json(kind, route, data))
            headers, body = answer.with_body(body)
            await _send_all(send, answer.status, headers, body)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the already-read body over once, then defers to the socket."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _send_all(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    if not any(k.lower() == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _huge_json(size: int) -> Iterator[bytes]:
    """A valid but enormous JSON answer, made as it is sent."""
    yield b'{"image":"'
    block = b"A" * (1024 * 1024)
    for start in range(0, size, len(block)):
        yield block[: min(len(block), size - start)]
    yield b'","seed":1,"parameters":{}}'


async def _stream(send: Send, receive: Receive, chunks: Iterable[bytes], delay: float) -> None:
    """Send chunks one by one (chunked encoding unless a length was announced),
    stopping early when the client goes away: uvicorn drops writes to a closed socket silently."""
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        for chunk in chunks:
            if gone.done():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # Even at no delay: a send to a closed socket returns at once without
            # yielding, so the disconnect watcher would never run otherwise.
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        gone.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
