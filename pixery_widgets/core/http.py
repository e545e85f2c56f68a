"""The one shared ``httpx.AsyncClient``.

An AsyncClient belongs to the event loop it first ran on. In a kernel there is
one loop for the life of the process, so there is one client; the sync
wrappers also reuse a single private loop (see ``_sync``). Timeouts are set
per request: 2 s for a health check, minutes for a generation.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

__all__ = ["MAX_RESPONSE_BYTES", "get_client", "read_limited"]

#: Largest answer body read from any back end; bigger ones are refused mid-stream.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def get_client() -> httpx.AsyncClient:
    """The process's client for the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            follow_redirects=False,
            # Never pick up proxies or netrc credentials from the environment: a
            # key must only ever go where the provider module sends it.
            trust_env=False,
            headers={"User-Agent": "pixery-widgets"},
        )
        _clients[loop] = client
    return client


async def read_limited(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read a streamed body, refusing it as soon as it passes ``limit`` bytes.

    Raises ``OverflowError``; the caller turns it into its own error.
    """
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise OverflowError(int(declared))
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise OverflowError(total)
        chunks.append(chunk)
    return b"".join(chunks)
