"""The one shared ``httpx.AsyncClient``.

An AsyncClient belongs to the event loop it first ran on. In a kernel there is
one loop for the life of the process, so there is one client; the sync
wrappers also reuse a single private loop (see ``_sync``). Timeouts are set
per request: 2 s for a health check, minutes for a generation.

The client follows the environment as plain httpx does (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``, ``SSL_CERT_DIR``;
httpx reads no netrc credentials since 0.24), so a user behind a corporate proxy
reaches the cloud providers. One exception: a loopback address (``localhost``,
127.0.0.0/8, ``::1``), typically an SSH tunnel to the self-hosted server, is
never sent through a proxy. A proxy sees only the host name of an https request
(the key travels inside the TLS tunnel). The variables are read when the client is
made, as httpx does, and looked at again at most every second: a notebook that sets
HTTPS_PROXY after its first request gets a new client from then on, and the old one
closes once its last exchange is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from .config import mask_url

__all__ = [
    "MAX_RESPONSE_BYTES",
    "ResponseTooLarge",
    "client_in_use",
    "get_client",
    "is_loopback",
    "read_limited",
]

#: Largest answer body read from any back end; bigger ones are refused mid-stream.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

#: Variables the client reads when it is made; a change gives the next request a new one.
_ENVIRONMENT = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
#: Seconds between two looks at those variables (a look costs some 30 µs; a request, ms).
ENV_RECHECK_S = 1.0


@dataclass
class _Shared:
    """A loop's client, the environment it was made with, and the requests using it."""

    client: httpx.AsyncClient
    environment: tuple[str | None, ...]
    looked_at: float = 0.0
    in_use: int = 0
    retired: bool = False


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Shared] = (
    weakref.WeakKeyDictionary()
)
_closing: set[asyncio.Task[None]] = set()


class ResponseTooLarge(Exception):
    """An answer passed the size limit while it was read (``read_limited``)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ``::1``."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class _SharedClient(httpx.AsyncClient):
    """httpx's client, with loopback addresses kept off any proxy.

    httpx routes by its ``mounts`` URL patterns, which match host names, not
    address ranges; this one check in front of them covers all of 127.0.0.0/8.
    """

    def _transport_for_url(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        if is_loopback(url.host):
            return self._transport  # the direct connection pool
        return super()._transport_for_url(url)


class _MaskURLs(logging.Filter):
    """httpx logs every request's URL (``HTTP Request: GET …``): mask its query values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                mask_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


def _mask_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskURLs) for f in logger.filters):
        logger.addFilter(_MaskURLs())


def _environment() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) or os.environ.get(name.lower()) for name in _ENVIRONMENT)


def _new_client() -> httpx.AsyncClient:
    _mask_httpx_logs()
    return _SharedClient(
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        follow_redirects=False,
        trust_env=True,
        headers={"User-Agent": "pixery-widgets"},
    )


def _shared() -> _Shared:
    loop = asyncio.get_running_loop()
    shared = _clients.get(loop)
    now = time.monotonic()
    if shared is not None and not shared.client.is_closed:
        if now - shared.looked_at < ENV_RECHECK_S:
            return shared
        shared.looked_at = now
        if shared.environment == _environment():
            return shared
    environment = _environment()
    if shared is not None:  # the proxy settings changed: new requests use a new client
        shared.retired = True
        if shared.in_use == 0:
            _close_later(shared.client)
    for old in [other for other in _clients if other.is_closed()]:
        del _clients[old]  # a script's finished asyncio.run: nothing can use its client again
    shared = _clients[loop] = _Shared(_new_client(), environment, looked_at=now)
    return shared


def _close_later(client: httpx.AsyncClient) -> None:
    if not client.is_closed:
        task = asyncio.get_running_loop().create_task(client.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


def get_client() -> httpx.AsyncClient:
    """The process's client for the running event loop (created on first use, and again
    when the proxy or CA variables change)."""
    return _shared().client


@contextlib.asynccontextmanager
async def client_in_use() -> AsyncIterator[httpx.AsyncClient]:
    """The client, held for one exchange: one retired meanwhile closes after it."""
    shared = _shared()
    shared.in_use += 1
    try:
        yield shared.client
    finally:
        shared.in_use -= 1
        if shared.retired and shared.in_use == 0:
            _close_later(shared.client)


async def read_limited(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read a streamed body, refusing it as soon as it passes ``limit`` bytes.

    Raises ``ResponseTooLarge``; the caller turns it into its own error.
    """
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(int(declared))
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise ResponseTooLarge(total)
        chunks.append(chunk)
    return b"".join(chunks)
