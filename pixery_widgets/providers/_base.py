"""The provider interface and the HTTP plumbing every back end shares.

A provider turns a validated ``GenerationRequest`` into HTTP and the answer
into a ``Generation``. It knows nothing of widgets, batches or archives.
Transport failures become package errors here, once, so every back end
reports a dropped connection or a timeout in the same words.
"""

from __future__ import annotations

import abc
import json
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx

from .._config import Settings
from .._errors import (
    BadResponseError,
    ConnectionFailedError,
    PixeryError,
    ServerTimeoutError,
)
from .._http import MAX_RESPONSE_BYTES, get_client, read_limited
from .._types import Generation, GenerationRequest

__all__ = ["Provider", "describe_transport_error", "send"]


class Provider(abc.ABC):
    """One back end. A fifth one is a new module with a subclass of this."""

    #: Short name used in the catalog ("selfhosted", "gemini", ...).
    name: ClassVar[str]
    #: Name shown to users ("Gemini", "your server", ...).
    label: ClassVar[str]

    def unavailable_reason(self, settings: Settings) -> str | None:
        """Why this provider cannot be used now without asking the network, or None."""
        return None

    def validate(self, request: GenerationRequest) -> None:  # noqa: B027 - optional hook
        """Provider-specific local checks; raise ``InvalidRequestError``."""

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest, settings: Settings) -> Generation:
        """Make one image. Cancelling the task must cancel the remote work where possible."""


def describe_transport_error(exc: httpx.TransportError, where: str) -> PixeryError:
    """An httpx transport failure → a package error whose message says what happened."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return ServerTimeoutError(
            f"{where} did not accept a connection in time.", reason="timed out"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeoutError(
            f"{where} accepted the connection but did not answer in time.", reason="timed out"
        )
    if isinstance(exc, httpx.ConnectError):
        causes = list(_cause_chain(exc))
        lowered = " ".join(str(c) for c in causes).lower()
        if any(isinstance(c, socket.gaierror) for c in causes) or any(
            s in lowered for s in _DNS_MARKERS
        ):
            return ConnectionFailedError(
                f"{where}: the host name could not be resolved.", reason="host name not found (DNS)"
            )
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in lowered:
            return ConnectionFailedError(
                f"{where} refused the connection; is the server running?",
                reason="connection refused",
            )
        return ConnectionFailedError(
            f"{where} could not be reached ({text}).", reason="unreachable"
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ConnectionFailedError(
            f"{where} dropped the connection in the middle of its answer.",
            reason="connection dropped",
        )
    return ConnectionFailedError(f"{where}: network error ({text}).", reason="network error")


_DNS_MARKERS = ("name or service", "nodename", "getaddrinfo", "name resolution", "no address")


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it, down to the OS error httpx wraps."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


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
    client = get_client()
    if content is not None:
        headers = {**(headers or {}), "Content-Type": "application/json"}
    request = client.build_request(
        method, url, json=json_body, content=content, headers=headers, timeout=timeout
    )
    try:
        response = await client.send(request, stream=True)
        try:
            body = await read_limited(response, limit)
        finally:
            await response.aclose()
    except OverflowError:
        raise BadResponseError(
            f"{where} sent an answer larger than {limit // (1024 * 1024)} MB; refused.",
            reason="answer too large",
        ) from None
    except httpx.TransportError as exc:
        raise describe_transport_error(exc, where) from None
    return response.status_code, dict(response.headers), body


def parse_json(body: bytes, *, where: str) -> Any:
    """Body → JSON, or a ``BadResponseError`` that says it was not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        snippet = body[:80].decode("utf-8", "replace").strip()
        hint = f" (it began {snippet!r})" if snippet else " (it was empty)"
        raise BadResponseError(
            f"{where} answered with something that is not JSON{hint}.",
            reason="bad answer (not JSON)",
        ) from None
