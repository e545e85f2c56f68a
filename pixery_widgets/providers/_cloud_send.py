"""Sending to a cloud provider: one retry policy for all three, which never pays twice.

Kept apart from the keys (``_cloud``) and the images (``_cloud_images``) because
this is the one place that decides whether a failed request is sent again
(docs/backends.md, "Retries"): a 429 is retried with backoff (honouring
Retry-After), since a limited request was not run; a request that certainly never
left (refused, DNS, proxy) once; a 5xx or a dropped connection only where
repeating cannot charge again: a read (GET), a 503 with Retry-After, or a provider
that documents that failed requests are free (fal). Everything else becomes a
package error carrying the provider's own words (``_cloud_errors``), scrubbed of
any key it echoed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ..core.config import Secret, Settings
from ..core.errors import ConnectionFailedError, PixeryError, ServerTimeoutError
from ._base import encode_json, parse_json, send
from ._cloud_errors import _NO_RETRY_429, _retry_after, error_for_status, parse_error, scrub
from ._wire import retry_after_seconds

if TYPE_CHECKING:
    from ._cloud import Service

__all__ = ["MAX_JSON_BYTES", "RETRY", "RetryPolicy", "call", "call_json"]

log = logging.getLogger("pixery_widgets.providers")

#: Largest JSON answer read from a cloud API (base64 images inside).
MAX_JSON_BYTES = 48 * 1024 * 1024


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


#: The policy in force; tests swap it with ``monkeypatch.setattr(_cloud_send, "RETRY", ...)``.
RETRY = RetryPolicy()


# -- when to repeat ----------------------------------------------------------------------


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


def _error_answer_delay(
    service: Service,
    status: int,
    body: bytes,
    headers: dict[str, str],
    settings: Settings,
    policy: RetryPolicy,
    repeatable: bool,
    tries: int,
) -> float:
    """Seconds before repeating an error answer other than a 429; raises its package error
    when not to: it is not a 5xx, a repeat might be billed again, or it was repeated already."""
    error = error_for_status(service, status, body, settings)
    if status < 500:
        raise error
    wait = _repeat_5xx_after(service, status, headers, repeatable, policy)
    if wait is None:
        raise _not_repeated(error)
    if tries >= policy.transient_retries:
        raise error
    return wait


# -- the request loop --------------------------------------------------------------------


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
    rate_tries = repeats = 0
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
            wait = _repeat_failure_after(exc, service, settings, policy, repeatable, repeats)
            repeats += 1
            log.info("%s: %s Retrying once.", service.label, scrub(exc.message, settings))
            await policy.sleep(wait)
            continue
        except PixeryError as exc:
            raise _scrub_exc(exc, service, settings) from None
        if 200 <= status < 300:
            return status, answer_headers, body
        if status == 429:
            wait = _rate_limit_delay(service, body, answer_headers, settings, policy, rate_tries)
            rate_tries += 1
            retry = (service.label, rate_tries, policy.rate_limit_retries, wait)
            log.info("%s answered 429; retry %d of %d in %.1f s.", *retry)
        else:
            wait = _error_answer_delay(
                service, status, body, answer_headers, settings, policy, repeatable, repeats
            )
            repeats += 1
            log.info("%s answered HTTP %d; retrying once.", service.label, status)
        await policy.sleep(wait)


async def call_json(service: Service, method: str, url: str, **kw: Any) -> Any:
    """``call`` and parse the 2xx body as JSON."""
    _status, _headers, body = await call(service, method, url, **kw)
    return parse_json(body, where=kw.get("where") or service.label)
