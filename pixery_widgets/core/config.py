"""Configuration, read in one place: the environment, then ``.env`` files.

The self-hosted server's URL changes with every rented GPU, so settings are
read afresh for every new panel or client and on an explicit reload; nothing
here is cached across calls. Precedence: the real environment, then the
working directory's ``.env``, then ``~/.env``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from dotenv import dotenv_values

from .errors import ConfigurationError

__all__ = [
    "KEY_ENV_NAMES",
    "Secret",
    "Settings",
    "env_names",
    "load_settings",
    "mask_url",
    "missing_key_reason",
    "normalize_url",
    "normalize_urls",
    "parse_cost_per_hour",
]

#: Provider → the environment variables that may hold its key, first wins.
KEY_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "gemini": ("GEMINI_API_KEY", "GEMINI_API_SECRET_KEY"),
    "openai": ("OPENAI_API_KEY", "OPENAI_API_SECRET_KEY"),
    "fal": ("FAL_KEY",),
}


def env_names(provider: str) -> str:
    """The variables that may hold ``provider``'s key, in words: "GEMINI_API_KEY or …"."""
    return " or ".join(KEY_ENV_NAMES.get(provider, ()))


def missing_key_reason(provider: str) -> str:
    """The short reason a menu entry is greyed: "no API key (set FAL_KEY)"."""
    first = KEY_ENV_NAMES.get(provider, ("its API key",))[0]
    return f"no API key (set {first})"


URL_ENV_NAME = "SELFHOSTED_API_URL"
ARCHIVE_ENV_NAME = "PIXERY_ARCHIVE_DIR"
COST_ENV_NAME = "SELFHOSTED_COST_PER_HOUR"


class Secret:
    """An API key that never shows itself in a repr, str or f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself; call only where it goes into a request header."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> object:  # never pickled into a saved file by accident
        raise TypeError("a Secret cannot be pickled")


def normalize_url(raw: str) -> str:
    """Strip whitespace and trailing slashes; refuse what is not a usable http(s) address.

    A path prefix (``https://host/proxy/8000``) and a query (``?token=abc``, which
    some proxies need on every request) are kept; a ``#fragment`` is dropped.
    """
    text = raw.strip()
    if not text:
        raise ConfigurationError(f"{URL_ENV_NAME} is empty; set it to the server's address.")
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise ConfigurationError(
            f"{URL_ENV_NAME} is not a valid address ({mask_url(text)!r}); "
            "expected something like http://203.0.113.7:8000."
        ) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"{URL_ENV_NAME} must start with http:// or https:// "
            f"(got {mask_url(text)!r}), e.g. http://203.0.113.7:8000."
        )
    if not parts.hostname:
        raise ConfigurationError(
            f"{URL_ENV_NAME} has no host name ({mask_url(text)!r}); "
            "expected something like http://203.0.113.7:8000."
        )
    try:
        port = parts.port  # raises on a malformed port or one above 65535
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigurationError(f"{URL_ENV_NAME} has an invalid port ({mask_url(text)!r}).")
    path = parts.path.rstrip("/")
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    _check_host(url)
    return url


def _check_host(url: str) -> None:
    """Refuse a host name httpx could not send to (bad punycode such as ``xn--zz``)."""
    try:
        httpx.Request("GET", url)  # builds the Host header, which decodes the name
    except (httpx.InvalidURL, ValueError) as exc:  # idna's IDNAError is a ValueError
        raise ConfigurationError(
            f"{URL_ENV_NAME} has a host name that is not a valid internet name "
            f"({mask_url(url)!r}: {exc})."
        ) from None


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s]+)@")
#: A URL's query, up to the end of the URL (white space, a quote or a fragment).
_QUERY = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>]*\?)(?P<query>[^\s#'\"<>]*)")


def _mask_query(query: str) -> str:
    """``token=abc&x=1`` → ``token=***&x=***``; a bare value (``?abc``) → ``***``."""
    masked = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        masked.append(f"{name}=***" if sep else ("***" if part else part))
    return "&".join(masked)


def mask_url(url: str) -> str:
    """The URL (or any text holding URLs) for display: ``user:password@`` becomes ``***@``
    and every query value ``***``, since both can be credentials."""
    url = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", url)
    return _QUERY.sub(lambda m: m.group("head") + _mask_query(m.group("query")), url)


#: A comma before the next address's scheme always separates (even after a query).
_BEFORE_SCHEME = re.compile(r",(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def _split_urls(raw: str) -> list[str]:
    """The addresses of a list: whitespace separates, and so does a comma, except inside a
    query (``?token=a,b`` is one address's token; a comma in front of a scheme still ends it)."""
    parts: list[str] = []
    for chunk in raw.split():
        for piece in _BEFORE_SCHEME.split(chunk):
            head, mark, query = piece.partition("?")
            names = head.split(",")
            names[-1] += mark + query.rstrip(",")
            parts += [name for name in names if name]
    return parts


def normalize_urls(raw: str) -> tuple[str, ...]:
    """One address or several (commas or whitespace between; ``_split_urls``), each through
    ``normalize_url``.

    Duplicates are dropped (first one kept, order kept); an error names the address
    at fault, masked, and its place in the list.
    """
    parts = _split_urls(raw)
    if len(parts) <= 1:
        return (normalize_url(parts[0] if parts else raw),)
    urls: list[str] = []
    for n, part in enumerate(parts, 1):
        try:
            url = normalize_url(part)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{URL_ENV_NAME} lists {len(parts)} addresses; address {n} "
                f"({mask_url(part)!r}) is not usable: {exc.message}"
            ) from None
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def parse_cost_per_hour(raw: str) -> float:
    """``SELFHOSTED_COST_PER_HOUR``: US dollars for one server's hour, e.g. ``0.30`` (or ``$0.30``)."""
    text = raw.strip().removeprefix("$").strip()
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise ConfigurationError(
            f"{COST_ENV_NAME} must be a number of US dollars per hour for one server, "
            f"e.g. 0.30 (got {raw.strip()!r}); self-hosted images are counted at $0 meanwhile."
        )
    return value


@dataclass(frozen=True)
class Settings:
    """A snapshot of the configuration; build a new one to see changes."""

    #: The first (or only) self-hosted server; give this or ``selfhosted_urls``.
    selfhosted_url: str | None = None
    keys: Mapping[str, Secret] = field(default_factory=dict)
    archive_dir: Path = Path("pixery-out")
    #: Set when SELFHOSTED_API_URL is present but malformed: shown, not raised,
    #: so a panel still opens with the cloud models.
    url_error: str | None = None
    #: Every self-hosted server, in the order SELFHOSTED_API_URL lists them.
    selfhosted_urls: tuple[str, ...] = ()
    #: What one server costs an hour (SELFHOSTED_COST_PER_HOUR), US dollars; None: not set.
    selfhosted_cost_per_hour: float | None = None
    #: Set when SELFHOSTED_COST_PER_HOUR is present but not a number (shown, not raised).
    cost_error: str | None = None

    def __post_init__(self) -> None:
        urls, first = tuple(self.selfhosted_urls), self.selfhosted_url
        if not urls and first:
            urls = (first,)
        elif urls and first is None:
            first = urls[0]
        elif urls and first != urls[0]:
            raise ValueError(
                "Settings: selfhosted_url must be the first of selfhosted_urls; give one of them"
            )
        object.__setattr__(self, "selfhosted_urls", urls)
        object.__setattr__(self, "selfhosted_url", first)

    def __repr__(self) -> str:  # the URL may carry user:password; keys show as Secret(***)
        many = (
            f", selfhosted_urls={tuple(mask_url(u) for u in self.selfhosted_urls)!r}"
            if len(self.selfhosted_urls) > 1
            else ""
        )
        cost = self.selfhosted_cost_per_hour
        return (
            f"Settings(selfhosted_url={self.display_url!r}{many}, keys={dict(self.keys)!r}, "
            f"archive_dir={self.archive_dir!r}, url_error={self.url_error!r}"
            + (f", selfhosted_cost_per_hour={cost!r}" if cost is not None else "")
            + ")"
        )

    def for_server(self, url: str) -> Settings:
        """These settings with ``url`` as the only self-hosted server (a pool's member)."""
        if self.selfhosted_urls == (url,):
            return self
        return replace(self, selfhosted_url=url, selfhosted_urls=(url,))

    def key_for(self, provider: str) -> Secret | None:
        return self.keys.get(provider)

    def has_key(self, provider: str) -> bool:
        return provider in self.keys

    @property
    def providers_with_keys(self) -> frozenset[str]:
        return frozenset(self.keys)

    @property
    def display_url(self) -> str | None:
        return mask_url(self.selfhosted_url) if self.selfhosted_url else None

    def secrets(self) -> list[str]:
        """Every key's raw value, so messages can be scrubbed of them."""
        return [s.reveal() for s in self.keys.values()]

    def redact(self, text: str) -> str:
        """``text`` with every configured key replaced by ``***``."""
        for value in self.secrets():
            if value:
                text = text.replace(value, "***")
        return text


def _read_env_files(cwd: Path, home: Path) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in (home / ".env", cwd / ".env"):  # later wins
        if path.is_file():
            try:
                values = dotenv_values(path)
            except (OSError, UnicodeDecodeError):
                continue
            merged.update({k: v for k, v in values.items() if v is not None})
    return merged


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    strict: bool = False,
) -> Settings:
    """Read the settings now. ``strict`` raises on a malformed URL instead of noting it."""
    env = dict(os.environ if environ is None else environ)
    files = _read_env_files(cwd or Path.cwd(), home or Path.home())
    merged = {**files, **env}

    def get(name: str) -> str | None:
        value = merged.get(name)
        return value.strip() if value and value.strip() else None

    def parsed(name: str, parse: Callable[[str], Any], unset: Any) -> tuple[Any, str | None]:
        """(value, None), or (``unset``, why) for a bad value (raised when ``strict``)."""
        raw = get(name)
        if raw is None:
            return unset, None
        try:
            return parse(raw), None
        except ConfigurationError as exc:
            if strict:
                raise
            return unset, exc.message

    urls, url_error = parsed(URL_ENV_NAME, normalize_urls, ())
    cost, cost_error = parsed(COST_ENV_NAME, parse_cost_per_hour, None)

    keys: dict[str, Secret] = {}
    for provider, names in KEY_ENV_NAMES.items():
        for name in names:
            value = get(name)
            if value:
                keys[provider] = Secret(value)
                break

    archive = Path(get(ARCHIVE_ENV_NAME) or "pixery-out").expanduser()
    return Settings(
        selfhosted_urls=urls,
        keys=keys,
        archive_dir=archive,
        url_error=url_error,
        selfhosted_cost_per_hour=cost,
        cost_error=cost_error,
    )


#: The one sentence saying no self-hosted server is configured, and what to do about it
#: (errors, the status and the panel all say it so).
NOT_CONFIGURED = (
    f"No self-hosted server is configured: set {URL_ENV_NAME} (in the environment or a .env "
    "file) to its address, e.g. http://203.0.113.7:8000."
)
