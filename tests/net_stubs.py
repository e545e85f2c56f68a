"""Tiny loopback servers that misbehave on purpose, for the network-trust tests.

Each listens on 127.0.0.1, answers every connection in a thread with a fixed
behaviour, and records the request head it read (the request line and headers),
so a test can see exactly what reached it: a forward proxy's ``CONNECT`` line,
a plain-HTTP request sent to a TLS port, a query string.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: A TLS alert record (fatal, protocol_version), as a TLS server may send to garbage.
TLS_ALERT = b"\x15\x03\x01\x00\x02\x02\x46"

Handler = Callable[[socket.socket, bytes], None]


def read_head(conn: socket.socket, limit: int = 65536) -> bytes:
    """Bytes up to the end of the request head (or whatever came before the peer stopped);
    a TLS ClientHello (it starts with 0x16) is answered as soon as it arrives."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit and not data.startswith(b"\x16"):
        try:
            chunk = conn.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


@dataclass
class StubServer:
    """A loopback server; ``heads`` holds the first line of every request it read, and
    ``raw`` each whole request head."""

    handler: Handler
    heads: list[bytes] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(2.0)
        self._sock.close()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with contextlib.closing(conn):
            conn.settimeout(5.0)
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # a plain-HTTP request to a TLS port ends here, as on a real one
            head = read_head(conn)
            if head:
                self.raw.append(head)
                self.heads.append(head.split(b"\r\n", 1)[0])
            with contextlib.suppress(OSError):
                self.handler(conn, head)


@contextlib.contextmanager
def stub_server(handler: Handler, *, tls: ssl.SSLContext | None = None) -> Iterator[StubServer]:
    server = StubServer(handler, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()


def answer(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    """A handler that answers every request with one HTTP/1.1 response, then closes."""
    fields = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    message = head.encode("latin-1") + b"\r\n" + body

    def handle(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(message)

    return handle


def send_bytes(data: bytes) -> Handler:
    """A handler that writes raw bytes (not HTTP) and closes."""

    def handle(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(data)

    return handle
