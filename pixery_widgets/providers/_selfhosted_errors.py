"""The self-hosted server's error answers, in words.

A non-2xx answer carries the server's own ``detail`` when it gave one. What sits
in front of a rented box answers too: a proxy that moved (a redirect), one that
limits the pace (429 with ``Retry-After``), or an https-only port that got a
plain http:// request. Each says what happened and, where it helps, which
setting to change.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core.config import URL_ENV_NAME, mask_url
from ..core.errors import (
    BadResponseError,
    ModelUnavailableError,
    RateLimitError,
    RequestRejectedError,
    ServerError,
)
from ._base import detail_text, parse_json
from ._wire import EXPECTS_HTTPS, https_hint, redirect_target, retry_after_seconds

__all__ = ["error_from_status"]


def _detail(body: bytes, where: str) -> tuple[object, str | None]:
    try:
        detail = parse_json(body, where=where).get("detail")
    except (BadResponseError, AttributeError):
        detail = None
    return detail, detail_text(detail) or (str(detail) if detail else None)


def _own_words(detail: object, text: str) -> str | None:
    """The answer's own words, if it had any (not the "HTTP 429 with …" stand-in)."""
    return text.rstrip(".") if detail else None


def _https_only(status: int, body: bytes, url: str) -> bool:
    """nginx, Go and Caddy answer a plain request on a TLS port with a 400 naming HTTPS."""
    return status == 400 and url.startswith("http://") and b"https" in body[:4096].lower()


def error_from_status(
    status: int,
    body: bytes,
    where: str,
    *,
    headers: Mapping[str, str] | None = None,
    url: str = "",
) -> ServerError:
    """A non-2xx answer → the package error carrying the server's own words.

    ``url`` is the address asked (for a redirect's target and the https hint).
    """
    headers = headers or {}
    detail, text = _detail(body, where)
    text = mask_url(text) if text is not None else None
    if text is None:
        kind = "an HTML page" if body.lstrip()[:1] == b"<" else "no details"
        text = f"HTTP {status} with {kind}"
    kw = {"provider": "selfhosted", "status_code": status, "detail": detail}
    if 300 <= status < 400:
        target = redirect_target(headers, url)
        where_to = f"to {target}" if target else "without saying where to"
        return ServerError(
            f"{where} answered with a redirect (HTTP {status}) {where_to}: the server, or a "
            f"proxy in front of it, has moved; {URL_ENV_NAME} may need changing"
            + (" to that address." if target else "."),
            reason=f"redirected (HTTP {status})",
            **kw,
        )
    if status == 429:
        wait = retry_after_seconds(headers)
        words = f": {own}" if (own := _own_words(detail, text)) else ""
        asks = f"; it asks to wait {wait:.0f} s" if wait is not None else ""
        return RateLimitError(
            f"{where} (or a proxy in front of it) is limiting the pace (HTTP 429){words}{asks}.",
            reason="rate limited",
            retry_after=wait,
            **kw,
        )
    if _https_only(status, body, url):
        return RequestRejectedError(
            f"{where} refused a plain http:// request, saying it expects HTTPS ({text}); "
            f"{https_hint(url, URL_ENV_NAME)}.",
            reason=EXPECTS_HTTPS,
            **kw,
        )
    cls: type[ServerError]
    if status in (400, 404, 422):
        cls = RequestRejectedError
    elif status == 503:
        cls = ModelUnavailableError
    else:
        cls = ServerError
    # A 5xx other than "not downloaded" is the server (or a proxy before it) failing, not refusing.
    verb = (
        "failed with an internal error"
        if status >= 500 and status != 503
        else "refused the request"
    )
    return cls(f"{where} {verb}: {text}", reason=f"error answer (HTTP {status})", **kw)
