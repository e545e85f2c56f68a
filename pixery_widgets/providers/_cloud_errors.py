"""The cloud providers' error answers, in words, and keys scrubbed from every message.

Gemini and OpenAI answer ``{"error": {...}}``, fal.ai ``{"detail": ...}``; each
non-2xx answer becomes the package error for it, with the provider's own words
verbatim, minus any key it echoed. ``_cloud_send.call`` decides what is repeated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.config import Settings, env_names
from ..core.errors import (
    AuthenticationError,
    ContentRefusedError,
    RateLimitError,
    RequestRejectedError,
    ServerError,
)
from ._base import detail_text
from ._wire import retry_after_seconds

if TYPE_CHECKING:
    from ._cloud import Service

__all__ = ["ErrorInfo", "error_for_status", "parse_error", "scrub"]


_MASKED_ECHO = re.compile(r"[A-Za-z0-9_\-]*\*{4,}[A-Za-z0-9_\-]*")


def scrub(text: str, settings: Settings) -> str:
    """``text`` without any configured key, nor a partly masked echo of one.

    Providers sometimes quote the key they rejected ("sk-proj-****abcd"); the
    visible ends are still part of the key, so the whole run is replaced.
    """
    return _MASKED_ECHO.sub("***", settings.redact(text))


# -- provider error bodies ---------------------------------------------------------------


@dataclass(frozen=True)
class ErrorInfo:
    """What a provider's error body says, in a provider-neutral shape."""

    message: str | None
    codes: frozenset[str]
    retry_delay_s: float | None = None


def _duration(text: Any) -> float | None:
    """Google's ``"37s"`` / ``"1.5s"`` durations → seconds."""
    if isinstance(text, str) and text.endswith("s"):
        try:
            return max(0.0, float(text[:-1]))
        except ValueError:
            return None
    return None


def parse_error(body: bytes) -> ErrorInfo:
    """Gemini/OpenAI ``{"error": {...}}``, fal ``{"detail": ...}`` or anything else."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ErrorInfo(None, frozenset())
    if not isinstance(data, dict):
        return ErrorInfo(None, frozenset())
    message: str | None = None
    codes: set[str] = set()
    delay: float | None = None
    error = data.get("error")
    if isinstance(error, dict):
        if isinstance(error.get("message"), str):
            message = error["message"]
        for field in ("code", "type", "status"):
            if isinstance(error.get(field), str):
                codes.add(error[field])
        details = error.get("details")
        for item in details if isinstance(details, list) else ():
            if isinstance(item, dict):
                if isinstance(item.get("reason"), str):
                    codes.add(item["reason"])
                delay = _duration(item.get("retryDelay")) if delay is None else delay
    elif isinstance(error, str):
        message = error
    if message is None:
        message = detail_text(data.get("detail"))
    if message is None and isinstance(data.get("message"), str):
        message = data["message"]
    return ErrorInfo(message, frozenset(codes), delay)


#: Error codes that mean the key itself was refused, whatever the status.
_KEY_REJECTED = frozenset({"API_KEY_INVALID", "invalid_api_key"})
#: 429s that are billing, not pace: retrying cannot help.
_NO_RETRY_429 = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
#: fal's 403 for an account it has locked (an exhausted balance, or by hand): the key is fine.
_ACCOUNT_LOCKED = "user is locked"
#: 4xx codes meaning the provider's safety system refused the prompt.
_REFUSED = frozenset({"content_policy_violation", "moderation_blocked"})


def error_for_status(
    service: Service,
    status: int,
    body: bytes,
    settings: Settings,
    *,
    retries: int = 0,
    retry_after: float | None = None,
) -> ServerError:
    """A non-2xx answer → the package error, with the provider's message verbatim (scrubbed)."""
    info = parse_error(body)
    if info.message:
        text = scrub(info.message.strip(), settings)
    else:
        kind = "an HTML page" if body.lstrip()[:1] == b"<" else "no details"
        text = f"HTTP {status} with {kind}"
    label = service.label
    kw: dict[str, Any] = {"provider": service.name, "status_code": status, "detail": text}
    if status == 403 and _ACCOUNT_LOCKED in text.lower():
        return RequestRejectedError(
            f"{label} refused the request because your account is locked (HTTP 403): {text} "
            "The API key itself was accepted.",
            reason="account locked",
            **kw,
        )
    if status in (401, 403) or info.codes & _KEY_REJECTED:
        return AuthenticationError(
            f"{label} rejected the API key (HTTP {status}): {text} "
            f"Check {env_names(service.name)}.",
            reason="API key rejected",
            **kw,
        )
    if status == 429:
        return _rate_limit_error(label, text, info, retries, retry_after, kw)
    if info.codes & _REFUSED:
        return ContentRefusedError(
            f"{label} refused to draw this (HTTP {status}): {text}",
            reason="refused (content policy)",
            **kw,
        )
    if 400 <= status < 500:
        return RequestRejectedError(
            f"{label} refused the request (HTTP {status}): {text}",
            reason=f"refused (HTTP {status})",
            **kw,
        )
    return ServerError(
        f"{label} had a server error (HTTP {status}): {text}",
        reason=f"provider error (HTTP {status})",
        **kw,
    )


def _rate_limit_error(
    label: str,
    text: str,
    info: ErrorInfo,
    retries: int,
    retry_after: float | None,
    kw: dict[str, Any],
) -> RateLimitError:
    """A 429 in words: quota or billing (not retryable), still limited after ``retries``,
    or limited now (retryable, after ``retry_after`` when the provider said)."""
    quota = bool(info.codes & _NO_RETRY_429)
    if quota:
        lead = f"{label} refused the request for quota or billing (HTTP 429)"
    elif retries:
        lead = f"{label} kept rate-limiting the request (HTTP 429, {retries} retries)"
    else:
        lead = f"{label} is rate-limiting the request (HTTP 429)"
    return RateLimitError(
        f"{lead}: {text}",
        reason="rate limited",
        retry_after=retry_after,
        retryable=not (quota or retries),
        **kw,
    )


def _retry_after(headers: dict[str, str], info: ErrorInfo) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), else the body's hint."""
    seconds = retry_after_seconds(headers)
    return seconds if seconds is not None else info.retry_delay_s
