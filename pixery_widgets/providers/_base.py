"""The provider interface and the HTTP plumbing every back end shares.

A provider turns a validated ``GenerationRequest`` into HTTP and the answer
into a ``Generation``. It knows nothing of widgets, batches or archives.
Transport failures become package errors here, once, so every back end
reports a dropped connection or a timeout in the same words.
"""

from __future__ import annotations

import abc
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import httpx

from ..core.config import Settings, mask_url
from ..core.errors import BadResponseError, ServerTimeoutError
from ..core.http import MAX_RESPONSE_BYTES, ResponseTooLarge, client_in_use, read_limited
from ..core.types import Generation, GenerationRequest
from ._wire import describe_failure, describe_transport_error

__all__ = [
    "OnImage",
    "Provider",
    "describe_transport_error",
    "detail_text",
    "encode_json",
    "parse_json",
    "send",
    "total_budget",
    "within",
]

T = TypeVar("T")

#: Called with an image the moment it is decoded, in the same worker thread.
OnImage = Callable[[Generation], None]


class Provider(abc.ABC):
    """One back end. A fifth one is a new module with a subclass of this."""

    #: Short name used in the catalog ("selfhosted", "gemini", ...).
    name: ClassVar[str]

    def unavailable_reason(self, settings: Settings) -> str | None:
        """Why this provider cannot be used now without asking the network, or None."""
        return None

    def validate(self, request: GenerationRequest) -> None:  # noqa: B027 - optional hook
        """Provider-specific local checks; raise ``InvalidRequestError``."""

    @abc.abstractmethod
    async def generate(
        self,
        request: GenerationRequest,
        settings: Settings,
        *,
        on_image: OnImage | None = None,
    ) -> Generation:
        """Make one image. Cancelling the task must cancel the remote work where possible.

        ``on_image``, when given, may be called once with the finished ``Generation``
        in the worker thread that decoded it, before this returns (the caller archives
        there, saving a second thread hop); an exception it raises propagates. A
        provider that does not call it leaves that work to the caller.
        """


def total_budget(timeout: float | httpx.Timeout) -> float | None:
    """Seconds the whole exchange may take: the longest of the per-phase timeouts.

    httpx times each read separately, so a server that answers a byte at a time
    would hold a request forever; the whole answer gets this deadline as well.
    """
    if isinstance(timeout, httpx.Timeout):
        phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        values = [v for v in phases if v is not None]
        return max(values) if values else None
    return timeout


async def within(seconds: float | None, coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` with a deadline; ``asyncio.TimeoutError`` when it passes.

    Not ``wait_for``: before Python 3.12 it can swallow a cancellation that
    arrives just as the inner call finishes, and a cancelled task would run on.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await coro
    task = asyncio.ensure_future(coro)  # Python 3.10 (tests/test_send_deadline.py)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise asyncio.TimeoutError
    return task.result()


def _build(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    where: str,
    json_body: Any,
    content: bytes | None,
    headers: dict[str, str] | None,
    timeout: float | httpx.Timeout,
) -> httpx.Request:
    try:
        return client.build_request(
            method, url, json=json_body, content=content, headers=headers, timeout=timeout
        )
    except (httpx.InvalidURL, ValueError) as exc:  # an address taken from an answer may be
        raise BadResponseError(  # anything; idna's errors for a bad name are ValueErrors
            f"{where}: the address {mask_url(url)!r} is not a valid URL ({mask_url(str(exc))}).",
            reason="bad address",
        ) from None


async def send(
    method: str,
    url: str,
    *,
    where: str,
    timeout: float | httpx.Timeout,
    json_body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    limit: int = MAX_RESPONSE_BYTES,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request over the shared client; status, headers and the body (bounded).

    ``content`` is an already-encoded JSON body (large ones are encoded off the
    event loop by the caller). The answer is streamed and refused as soon as it
    passes ``limit``, so a runaway answer never fills memory.
    """
    if content is not None:
        headers = {**(headers or {}), "Content-Type": "application/json"}
    async with client_in_use() as client:  # one retired meanwhile closes after this
        request = _build(client, method, url, where, json_body, content, headers, timeout)
        answering = False

        async def exchange() -> tuple[httpx.Response, bytes]:
            nonlocal answering
            response = await client.send(request, stream=True)
            answering = True
            try:
                return response, await read_limited(response, limit)
            finally:
                await response.aclose()

        budget = total_budget(timeout)
        try:
            response, body = await within(budget, exchange())
        except asyncio.TimeoutError:
            raise ServerTimeoutError(
                f"{where} started answering but did not finish within {budget:g} s."
                if answering
                else f"{where} did not answer within {budget:g} s.",
                reason="timed out",
            ) from None
        except ResponseTooLarge:
            raise BadResponseError(
                f"{where} sent an answer larger than {limit // (1024 * 1024)} MB; refused.",
                reason="answer too large",
            ) from None
        except Exception as exc:  # httpx's errors, and whatever idna or the sockets raise
            raise describe_failure(exc, where, url) from None
        return response.status_code, dict(response.headers), body


def encode_json(body: Any) -> bytes:
    """A JSON body as ``send(content=...)`` takes it; callers with MBs of references run
    this through ``asyncio.to_thread``."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def detail_text(detail: Any) -> str | None:
    """A FastAPI-style ``detail`` in words: a string as is, a 422 list as ``field: msg; …``."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc")
                where = (
                    ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
                )
                msg = str(item.get("msg", "invalid"))
                parts.append(f"{where}: {msg}" if where else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts) or None
    return None


def parse_json(body: bytes, *, where: str) -> Any:
    """Body → JSON, or a ``BadResponseError`` that says it was not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurd nesting
        snippet = body[:80].decode("utf-8", "replace").strip()
        hint = f" (it began {snippet!r})" if snippet else " (it was empty)"
        what = (
            f"JSON that is cut off or malformed ({len(body)} bytes)"
            if snippet[:1] in ("{", "[")
            else "something that is not JSON"
        )
        raise BadResponseError(
            f"{where} answered with {what}{hint}.",
            reason="bad answer (not JSON)",
        ) from None
