"""Every error pixery-widgets raises, in one tree.

Each exception carries a sentence a user understands; none ever contains an
API key (keys are masked before any message is built).

    PixeryError
    ├── ConfigurationError ........ a setting is missing or malformed
    │   └── MissingAPIKeyError .... a cloud model was asked for without its key
    ├── InvalidRequestError ....... refused locally, before anything was sent
    │   ├── UnknownModelError ..... no such model (lists the known ones)
    │   ├── UnknownLoraError ...... the server does not list that LoRA
    │   └── CostLimitError ........ the estimate is above ``max_cost_usd``
    ├── ServerError ............... the back end answered with an error
    │   ├── RequestRejectedError .. a 4xx: it refused the request (its own words)
    │   ├── ModelUnavailableError . 503: the checkpoint is not downloaded
    │   ├── AuthenticationError ... 401 / 403 (or an invalid-key code): key rejected
    │   ├── RateLimitError ........ 429: retries used up, too long a wait, or quota
    │   └── ContentRefusedError ... no image: a safety block or a refusal
    ├── ConnectionFailedError ..... the back end could not be reached or dropped us
    │   └── ServerTimeoutError .... no connection, or no (whole) answer, in time
    ├── BadResponseError .......... the answer is not what the contract says
    │   └── ImageDecodeError ...... the image bytes are not a usable image
    └── ArchiveError .............. an image could not be written to disk
        └── RecordNotFoundError ... no archived image with that id (also a KeyError)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArchiveError",
    "AuthenticationError",
    "BadResponseError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContentRefusedError",
    "CostLimitError",
    "ImageDecodeError",
    "InvalidRequestError",
    "MissingAPIKeyError",
    "ModelUnavailableError",
    "PixeryError",
    "RateLimitError",
    "RecordNotFoundError",
    "RequestRejectedError",
    "ServerError",
    "ServerTimeoutError",
    "UnknownLoraError",
    "UnknownModelError",
]


class PixeryError(Exception):
    """Base class: catch this to catch everything the package raises."""

    def __init__(
        self, message: str, *, provider: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        #: A few words for a status line ("connection refused", "timed out").
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class ConfigurationError(PixeryError):
    """A setting (environment or ``.env``) is missing or malformed."""


class MissingAPIKeyError(ConfigurationError):
    """A cloud model was requested but its provider's key is not set."""


class InvalidRequestError(PixeryError, ValueError):
    """The request was refused locally; nothing was sent anywhere."""


class UnknownModelError(InvalidRequestError):
    """No model by that name or alias."""


class UnknownLoraError(InvalidRequestError):
    """The self-hosted server does not list the requested LoRA."""


class CostLimitError(InvalidRequestError):
    """A batch's estimated cost is above the limit the caller set."""


class ServerError(PixeryError):
    """The back end answered, with an error; ``detail`` holds its own words."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        detail: object = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, reason=reason)
        self.status_code = status_code
        self.detail = detail


class RequestRejectedError(ServerError):
    """The back end refused the request: 400 / 404 / 422, any other cloud 4xx, or a
    fal account it has locked; the message carries its own words."""


class ModelUnavailableError(ServerError):
    """The model exists but cannot run now (503: checkpoint not downloaded)."""


class AuthenticationError(ServerError):
    """The provider rejected the API key (401 / 403, or its invalid-key error code)."""


class RateLimitError(ServerError):
    """A 429: still limited after the allowed retries, asked to wait too long, or out of
    quota (not retried); from your own server, a proxy in front of it limiting the pace."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        retryable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        #: Seconds the service asked to wait (``Retry-After``), when it said.
        self.retry_after = retry_after
        #: False when waiting cannot help: out of quota, or the retries were already used.
        self.retryable = retryable


class ContentRefusedError(ServerError):
    """The provider would not draw this: an answer without an image, or a 4xx
    content-policy code."""


class ConnectionFailedError(PixeryError):
    """The back end could not be reached, or the connection dropped mid-answer."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        reason: str | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, provider=provider, reason=reason)
        #: False only when the request certainly never left: the connection was refused,
        #: the name did not resolve, the proxy or TLS set-up failed. Only then is repeating
        #: a paid request safe.
        self.request_sent = request_sent


class ServerTimeoutError(ConnectionFailedError):
    """The back end did not accept the connection, or did not answer (in full), in time."""


class BadResponseError(PixeryError):
    """The answer does not have the shape the contract promises."""


class ImageDecodeError(BadResponseError):
    """The image in the answer is not valid base64, not an image, or too large."""


class ArchiveError(PixeryError):
    """An image could not be saved to the archive."""


class RecordNotFoundError(ArchiveError, KeyError):
    """No archived image with that id (a ``KeyError`` too, as for a mapping)."""
