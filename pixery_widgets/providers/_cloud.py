"""What the three cloud providers share: who each is, and where its key may go.

A key is attached in exactly one place (``Service.auth_headers``), only for
its own provider's host and only over https, so a URL taken from an answer
can never carry it elsewhere. The rest the providers share has a module of its
own: sending and the retry policy (``_cloud_send``), images in and out
(``_cloud_images``), error answers in words (``_cloud_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..core.config import Secret, Settings, env_names, missing_key_reason
from ..core.errors import BadResponseError, MissingAPIKeyError
from ._base import Provider

if TYPE_CHECKING:
    from ._cloud_send import RetryPolicy

__all__ = ["CloudProvider", "Service", "require_key"]


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
