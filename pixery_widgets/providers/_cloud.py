"""What the three cloud providers share: keys, retries, image helpers (the error
mapping is in ``_cloud_errors``).

A key is attached in exactly one place (``Service.auth_headers``), only for
its own provider's host and only over https, so a URL taken from an answer
can never carry it elsewhere. Retries follow one policy for every provider,
and never pay twice (docs/backends.md, "Retries"): a 429 is retried with backoff
(honouring Retry-After), since a limited request was not run; a request that
certainly never left (refused, DNS, proxy) once; a 5xx or a dropped connection
only where repeating cannot charge again: a read (GET), a 503 with Retry-After,
or a provider that documents that failed requests are free (fal). Everything
else becomes a package error carrying the provider's own words, scrubbed of any
key it echoed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ..core.catalog import ModelSpec
from ..core.config import Secret, Settings, env_names, missing_key_reason
from ..core.errors import (
    BadResponseError,
    ConnectionFailedError,
    MissingAPIKeyError,
    PixeryError,
    ServerTimeoutError,
)
from ..core.images import base64_image_bytes, check_image_bytes
from ..core.types import Generation, GenerationRequest
from ._base import Provider, encode_json, parse_json, send
from ._cloud_errors import _NO_RETRY_429, _retry_after, error_for_status, parse_error, scrub
from ._wire import retry_after_seconds

__all__ = [
    "RETRY",
    "CloudProvider",
    "RetryPolicy",
    "Service",
    "call",
    "call_json",
    "check_image",
    "decode_image",
    "encode_reference",
    "error_for_status",
    "fetch_image",
    "finished",
    "image_mime",
    "nearest",
    "require_key",
    "scrub",
]

log = logging.getLogger("pixery_widgets.providers")

#: Largest JSON answer read from a cloud API (base64 images inside).
MAX_JSON_BYTES = 48 * 1024 * 1024
#: Largest image downloaded from a URL in an answer.
MAX_IMAGE_BYTES = 48 * 1024 * 1024

_T = TypeVar("_T")


# -- retry policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying again.

    ``sleep`` is the one clock every wait goes through (retries and fal's
    polling), so tests replace it instead of sleeping.
    """

    #: 429 answers retried before ``RateLimitError``.
    rate_limit_retries: int = 3
    #: First wait after a 429 that names no delay; doubles each time.
    backoff_s: float = 1.0
    backoff_max_s: float = 20.0
    #: A provider asking for a longer wait than this is reported, not waited for.
    max_retry_after_s: float = 60.0
    #: A failure that cannot have charged (see ``call``) is retried this many times.
    transient_retries: int = 1
    transient_delay_s: float = 1.0
    #: Random extra fraction on computed backoffs, so parallel requests spread out.
    jitter: float = 0.1
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        return base * (1 + random.uniform(0, self.jitter)) if self.jitter else base


#: The policy in force; tests swap it with ``monkeypatch.setattr(_cloud, "RETRY", ...)``.
RETRY = RetryPolicy()


# -- services and keys -------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One cloud provider: its name, where its key may go and how it is sent."""

    name: str
    label: str
    #: The only host (or domain, with ``subdomains``) the key is ever sent to.
    key_host: str
    header: str
    scheme: str = ""
    subdomains: bool = False
    #: The provider documents that a request failing with a 5xx is not billed (fal.ai),
    #: so one may be repeated.
    unbilled_5xx: bool = False

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed "[" from a broken answer
            return False
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host:
            return False
        return host == self.key_host or (self.subdomains and host.endswith("." + self.key_host))

    def auth_headers(self, key: Secret, url: str) -> dict[str, str]:
        """The key header for ``url``; refuses any URL not on this provider's host."""
        if not self.allows(url):
            host = _hostname(url) or url
            raise BadResponseError(
                f"{self.label} pointed to {host!r}, which is not {self.key_host}; "
                f"your {self.label} key is only ever sent to {self.key_host}, so this was refused.",
                provider=self.name,
                reason="unexpected host",
            )
        return {self.header: self.scheme + key.reveal()}


def _hostname(url: str) -> str | None:
    """The host of ``url``, or None when there is none or the URL is malformed."""
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


class CloudProvider(Provider):
    """What every cloud back end shares: a key of its own and a retry policy."""

    def __init__(self, *, retry: RetryPolicy | None = None) -> None:
        self.retry = retry

    def __repr__(self) -> str:  # never the key, never the policy's internals
        return f"{type(self).__name__}()"

    def unavailable_reason(self, settings: Settings) -> str | None:
        return None if settings.has_key(self.name) else missing_key_reason(self.name)


def require_key(settings: Settings, service: Service) -> Secret:
    """The provider's key, or ``MissingAPIKeyError`` before anything is sent."""
    key = settings.key_for(service.name)
    if key is None or not key.reveal():
        raise MissingAPIKeyError(
            f"{service.label} needs an API key: set {env_names(service.name)} "
            "in your environment or ~/.env.",
            provider=service.name,
            reason="no API key",
        )
    return key


# -- the request loop --------------------------------------------------------------------


def _scrub_exc(exc: PixeryError, service: Service, settings: Settings) -> PixeryError:
    exc.message = scrub(exc.message, settings)
    exc.args = (exc.message,)
    exc.provider = exc.provider or service.name
    return exc


#: Methods a repeat cannot charge for again: they read, or set a state (RFC 9110).
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_NOT_REPEATED = (
    " It was not repeated automatically: the provider may already have run (and billed) it."
)


def _not_repeated(exc: PixeryError) -> PixeryError:
    exc.message += _NOT_REPEATED
    exc.args = (exc.message,)
    return exc


def _rate_limit_delay(
    service: Service,
    body: bytes,
    headers: dict[str, str],
    settings: Settings,
    policy: RetryPolicy,
    tries: int,
) -> float:
    """Seconds to wait before repeating a 429 (it was not run); raises when not to."""
    info = parse_error(body)
    asked = _retry_after(headers, info)
    if info.codes & _NO_RETRY_429 or tries >= policy.rate_limit_retries:
        raise error_for_status(service, 429, body, settings, retries=tries, retry_after=asked)
    if asked is None:
        return policy.backoff(tries)
    if asked > policy.max_retry_after_s:
        error = error_for_status(service, 429, body, settings, retry_after=asked)
        error.message = f"{error.message} (it asks to wait {asked:.0f} s; not retried)"
        error.args = (error.message,)
        raise error
    return asked


def _repeat_failure_after(
    exc: ConnectionFailedError,
    service: Service,
    settings: Settings,
    policy: RetryPolicy,
    repeatable: bool,
    tries: int,
) -> float:
    """Seconds before repeating a request that failed on the way; raises when not to:
    it may have been run (sent, not a read), it timed out, or it was repeated already."""
    safe = repeatable or not exc.request_sent
    # A timeout already used the whole budget; waiting again would double it.
    if isinstance(exc, ServerTimeoutError) or tries >= policy.transient_retries or not safe:
        raise _scrub_exc(exc if safe else _not_repeated(exc), service, settings) from None
    return policy.transient_delay_s


def _repeat_5xx_after(
    service: Service, status: int, headers: dict[str, str], repeatable: bool, policy: RetryPolicy
) -> float | None:
    """Seconds before repeating a 5xx, or None when a repeat might be billed again.

    Safe: a read; a 503 with Retry-After (the server says it did not take the request
    on and when to come back); a provider that documents 5xx failures as free.
    """
    asked = retry_after_seconds(headers) if status == 503 else None
    if asked is not None and asked <= policy.max_retry_after_s:
        return asked
    if repeatable or service.unbilled_5xx:
        return policy.transient_delay_s
    return None


async def call(
    service: Service,
    method: str,
    url: str,
    *,
    settings: Settings,
    key: Secret | None,
    timeout: float | httpx.Timeout,
    json_body: Any = None,
    limit: int = MAX_JSON_BYTES,
    where: str | None = None,
    policy: RetryPolicy | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send with the shared retry policy; a 2xx answer, or the package error for it.

    ``key`` None sends no credentials at all (image downloads on other hosts). Nothing
    that may have been billed is sent twice (module docstring).
    """
    policy = policy or RETRY
    headers = service.auth_headers(key, url) if key is not None else None
    where = where or service.label
    repeatable = method.upper() in _REPEATABLE
    # References make bodies of many MB: encode them off the kernel's event loop.
    content = None if json_body is None else await asyncio.to_thread(encode_json, json_body)
    rate_tries = transient_tries = 0
    while True:
        try:
            status, answer_headers, body = await send(
                method,
                url,
                where=where,
                timeout=timeout,
                content=content,
                headers=headers,
                limit=limit,
            )
        except ConnectionFailedError as exc:
            wait = _repeat_failure_after(
                exc, service, settings, policy, repeatable, transient_tries
            )
            transient_tries += 1
            log.info("%s: %s Retrying once.", service.label, scrub(exc.message, settings))
            await policy.sleep(wait)
            continue
        except PixeryError as exc:
            raise _scrub_exc(exc, service, settings) from None
        if 200 <= status < 300:
            return status, answer_headers, body
        if status == 429:
            delay = _rate_limit_delay(service, body, answer_headers, settings, policy, rate_tries)
            rate_tries += 1
            retry = (service.label, rate_tries, policy.rate_limit_retries, delay)
            log.info("%s answered 429; retry %d of %d in %.1f s.", *retry)
            await policy.sleep(delay)
            continue
        error = error_for_status(service, status, body, settings)
        if status >= 500:
            wait = _repeat_5xx_after(service, status, answer_headers, repeatable, policy)
            if wait is None:
                raise _not_repeated(error)
            if transient_tries < policy.transient_retries:
                transient_tries += 1
                log.info("%s answered HTTP %d; retrying once.", service.label, status)
                await policy.sleep(wait)
                continue
        raise error


async def call_json(service: Service, method: str, url: str, **kw: Any) -> Any:
    """``call`` and parse the 2xx body as JSON."""
    _status, _headers, body = await call(service, method, url, **kw)
    return parse_json(body, where=kw.get("where") or service.label)


# -- images ------------------------------------------------------------------------------


def image_mime(raw: bytes) -> str | None:
    """The MIME type from the first bytes, for the formats providers accept."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


_SENDABLE = ("image/png", "image/jpeg", "image/webp")


def encode_reference(raw: bytes) -> tuple[str, str]:
    """Reference bytes → (MIME type, base64); other formats are converted to PNG.

    CPU-bound for big images: call through ``asyncio.to_thread``.
    """
    mime = image_mime(raw)
    if mime not in _SENDABLE:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as img:
            buf = io.BytesIO()
            img.save(buf, format="PNG")
        raw, mime = buf.getvalue(), "image/png"
    return mime, base64.b64encode(raw).decode("ascii")


def finished(
    service: Service,
    request: GenerationRequest,
    spec: ModelSpec,
    image: tuple[bytes, int, int],
    started: float,
    *,
    sent: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    cost: float | None = None,
    seed: int | None = None,
) -> Generation:
    """The ``Generation`` for a cloud answer. Its parameters: what every provider records,
    then what was ``sent``, then the provider's ``extra``; the cost is the list price for
    the size drawn unless the answer said what it cost."""
    png, width, height = image
    params: dict[str, Any] = {
        "prompt": request.prompt,
        "model": request.model,
        "api_id": spec.api_id,
        "provider": service.name,
        **sent,
        "width": width,
        "height": height,
        "requested_width": request.width,
        "requested_height": request.height,
        "references": len(request.references),
        "reference_hash": request.reference_hash,
        **(extra or {}),
    }
    return Generation(
        png_bytes=png,
        seed=seed,
        model=request.model,
        provider=service.name,
        params=params,
        elapsed_s=time.perf_counter() - started,
        cost_usd=cost if cost is not None else spec.estimated_cost(width, height),
        request=request,
    )


def decode_image(data: object, service: Service) -> tuple[bytes, int, int]:
    """Base64 from an answer → (bytes, width, height), checked to be a sane image.

    CPU-bound: call through ``asyncio.to_thread``.
    """
    raw = base64_image_bytes(data, provider=service.name, label=service.label)
    return check_image(raw, service)


def check_image(raw: bytes, service: Service) -> tuple[bytes, int, int]:
    """Downloaded bytes → (bytes, width, height), checked to be a sane image."""
    width, height = check_image_bytes(raw, provider=service.name, label=service.label)
    return raw, width, height


async def fetch_image(
    service: Service, url: str, *, settings: Settings, timeout: float = 60.0
) -> tuple[bytes, int, int]:
    """Download an image an answer points to, with no credentials (another host)."""
    if not isinstance(url, str):
        raise BadResponseError(
            f"{service.label} gave an image address that is not text: {type(url).__name__}.",
            provider=service.name,
            reason="bad image address",
        )
    if url.startswith("data:"):
        return await asyncio.to_thread(decode_image, url, service)
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = "?"
    if scheme not in ("http", "https") or _hostname(url) is None:
        raise BadResponseError(
            f"{service.label} gave an image address that is not a usable http(s) URL ({scheme}:…).",
            provider=service.name,
            reason="bad image address",
        )
    host = _hostname(url) or "?"
    _status, _headers, body = await call(
        service,
        "GET",
        url,
        settings=settings,
        key=None,
        timeout=timeout,
        limit=MAX_IMAGE_BYTES,
        where=f"{service.label}'s image host ({host})",
    )
    return await asyncio.to_thread(check_image, body, service)


# -- sizes -------------------------------------------------------------------------------


def nearest(width: int, height: int, options: Sequence[tuple[_T, int, int]]) -> _T:
    """The option whose aspect ratio is closest to width:height (first wins a tie)."""
    target = math.log(width / height)
    return min(options, key=lambda o: abs(math.log(o[1] / o[2]) - target))[0]
