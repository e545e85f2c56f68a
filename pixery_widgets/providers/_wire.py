"""What went wrong on the wire, in words: transport failures, redirects, Retry-After.

Everything httpx, idna or the socket layer under them can raise while a request
is sent or its answer read becomes a package error here, once, so every back end
reports a dropped connection, a corrupt compressed answer or an https-only port
in the same words. Messages show URLs masked (``mask_url``): no password, no
query value.
"""

from __future__ import annotations

import email.utils
import math
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urljoin, urlsplit

import httpx

from ..core.config import mask_url
from ..core.errors import (
    BadResponseError,
    ConnectionFailedError,
    PixeryError,
    ServerError,
    ServerTimeoutError,
)
from ..core.http import client_in_use

__all__ = [
    "EXPECTS_HTTPS",
    "describe_failure",
    "describe_transport_error",
    "https_hint",
    "redirect_target",
    "retry_after_seconds",
    "speaks_tls",
]

#: The short reason of an error that says the address should be https://.
EXPECTS_HTTPS = "it expects https://"
#: Seconds the https:// probe of ``speaks_tls`` may take per phase.
PROBE_TIMEOUT = 0.5

_DNS_MARKERS = ("name or service", "nodename", "getaddrinfo", "name resolution", "no address")


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it, down to the OS error httpx wraps."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups, or ``exc`` itself."""
    while isinstance(getattr(exc, "exceptions", None), (list, tuple)) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def https_hint(url: str, setting: str) -> str:
    """``"change SELFHOSTED_API_URL to https://…"``: the address with https, masked."""
    try:
        target = mask_url(urlsplit(url)._replace(scheme="https").geturl())
    except ValueError:
        target = "https://…"
    return f"change {setting} to {target}"


def describe_transport_error(
    exc: httpx.TransportError, where: str, url: str = ""
) -> ConnectionFailedError:
    """An httpx transport failure → a package error whose message says what happened."""
    text = mask_url(str(exc) or type(exc).__name__)
    if isinstance(exc, httpx.ConnectTimeout):
        return ServerTimeoutError(
            f"{where} did not accept a connection in time.", reason="timed out", request_sent=False
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeoutError(
            f"{where} accepted the connection but did not answer in time.", reason="timed out"
        )
    if isinstance(exc, httpx.ProxyError):
        return ConnectionFailedError(
            f"{where} could not be reached through the proxy set in HTTPS_PROXY / HTTP_PROXY "
            f"({text}); check the proxy, or add the host to NO_PROXY.",
            reason="proxy failed",
            request_sent=False,
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConnectionFailedError(
            f"{where}: the address {mask_url(url)!r} is not an http(s) address ({text}).",
            reason="bad address",
            request_sent=False,
        )
    if isinstance(exc, httpx.ConnectError):
        return _connect_error(exc, where, text)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        if "without sending a response" in text:  # a kept-alive connection it had closed
            return ConnectionFailedError(
                f"{where} closed the connection without answering; "
                "it may have stopped or restarted.",
                reason="connection dropped",
            )
        return ConnectionFailedError(
            f"{where} dropped the connection before its answer was complete.",
            reason="connection dropped",
        )
    return ConnectionFailedError(f"{where}: network error ({text}).", reason="network error")


def _connect_error(exc: httpx.ConnectError, where: str, text: str) -> ConnectionFailedError:
    """Refused, not found in DNS, or unreachable: nothing was sent in any of them."""
    causes = list(_cause_chain(exc))
    lowered = " ".join(str(c) for c in causes).lower()
    if any(isinstance(c, socket.gaierror) for c in causes) or any(
        s in lowered for s in _DNS_MARKERS
    ):
        return ConnectionFailedError(
            f"{where}: the host name could not be resolved.",
            reason="host name not found (DNS)",
            request_sent=False,
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in lowered:
        return ConnectionFailedError(
            f"{where} refused the connection; is the server running?",
            reason="connection refused",
            request_sent=False,
        )
    return ConnectionFailedError(
        f"{where} could not be reached ({text}).", reason="unreachable", request_sent=False
    )


def describe_failure(exc: Exception, where: str, url: str = "") -> PixeryError:
    """Any exception out of an exchange → a package error with a sentence.

    httpx's own tree first, then what can come from beneath it: idna's errors for a
    name it cannot encode, a ``ValueError`` or an exception group from the socket layer
    (a port above 65535 reaches ``connect`` as an ``OverflowError`` inside one).
    """
    if isinstance(exc, httpx.TransportError):
        return describe_transport_error(exc, where, url)
    if isinstance(exc, httpx.DecodingError):
        return BadResponseError(
            f"{where} sent a compressed answer (Content-Encoding) that could not be "
            "decompressed; it is damaged.",
            reason="bad answer (corrupt compression)",
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return BadResponseError(f"{where} redirected too many times.", reason="redirect loop")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return ServerError(
            f"{where} answered with an error (HTTP {status}).",
            status_code=status,
            reason=f"error answer (HTTP {status})",
        )
    leaf = _leaf(exc)
    detail = mask_url(f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__)
    if isinstance(leaf, (httpx.InvalidURL, UnicodeError)):  # idna's IDNAError is a UnicodeError
        return ConnectionFailedError(
            f"{where}: the address {mask_url(url)!r} could not be used ({detail}).",
            reason="bad address",
        )
    return ConnectionFailedError(f"{where}: the request failed ({detail}).", reason="network error")


def _tls_spoken(exc: BaseException) -> bool:
    """A handshake failure that only a TLS peer causes: a certificate we cannot verify,
    or a TLS alert it sent ("wrong version number" means it answered something else)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    return isinstance(exc, ssl.SSLError) and "ALERT" in str(getattr(exc, "reason", "") or "")


async def speaks_tls(url: str) -> bool:
    """Does the https:// twin of ``url`` answer? A certificate it cannot verify (a box
    with a self-signed one) or a TLS alert counts as yes: the port speaks TLS. This tells a plain-HTTP
    mistake from a dead server; it goes the way every request goes (the shared client,
    its proxies). Run it under a deadline (``_base.within``)."""
    async with client_in_use() as client:
        try:
            target = urlsplit(url)._replace(scheme="https").geturl()
            request = client.build_request("GET", target, timeout=httpx.Timeout(PROBE_TIMEOUT))
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            return any(_tls_spoken(c) for c in _cause_chain(exc))
        except Exception:  # anything else: no sign of TLS (refused, reset, not an address)
            return False
        await response.aclose()  # its body is not read
        return True


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), else None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        try:
            return max(0.0, when.timestamp() - time.time())
        except (OverflowError, OSError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def redirect_target(headers: Mapping[str, str], url: str) -> str | None:
    """Where a 3xx answer points (``Location`` resolved against ``url``), masked."""
    location = next((v for k, v in headers.items() if k.lower() == "location"), None)
    if not location or not location.strip():
        return None
    try:
        return mask_url(urljoin(url, location.strip()))
    except ValueError:
        return mask_url(location.strip())
