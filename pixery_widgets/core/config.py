"""Configuration, read in one place: the environment, then ``.env`` files.

The self-hosted server's URL changes with every rented GPU, so settings are
read afresh for every new panel or client and on an explicit reload; nothing
here is cached across calls. Precedence: the real environment, then the
working directory's ``.env``, then ``~/.env``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    """Strip whitespace and trailing slashes; refuse what is not http(s) with a host.

    A path prefix (``https://host/proxy/8000``) is kept: some users reach the
    server through a Jupyter proxy.
    """
    text = raw.strip()
    if not text:
        raise ConfigurationError(f"{URL_ENV_NAME} is empty; set it to the server's address.")
    parts = urlsplit(text)
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
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigurationError(
            f"{URL_ENV_NAME} has an invalid port ({mask_url(text)!r})."
        ) from None
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s]+)@")


def mask_url(url: str) -> str:
    """The URL with any ``user:password@`` replaced by ``***@``, for display."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", url)


@dataclass(frozen=True)
class Settings:
    """A snapshot of the configuration; build a new one to see changes."""

    selfhosted_url: str | None = None
    keys: Mapping[str, Secret] = field(default_factory=dict)
    archive_dir: Path = Path("pixery-out")
    #: Set when SELFHOSTED_API_URL is present but malformed: shown, not raised,
    #: so a panel still opens with the cloud models.
    url_error: str | None = None

    def __repr__(self) -> str:  # the URL may carry user:password; keys show as Secret(***)
        return (
            f"Settings(selfhosted_url={self.display_url!r}, keys={dict(self.keys)!r}, "
            f"archive_dir={self.archive_dir!r}, url_error={self.url_error!r})"
        )

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

    url: str | None = None
    url_error: str | None = None
    raw_url = get(URL_ENV_NAME)
    if raw_url is not None:
        try:
            url = normalize_url(raw_url)
        except ConfigurationError as exc:
            if strict:
                raise
            url_error = exc.message

    keys: dict[str, Secret] = {}
    for provider, names in KEY_ENV_NAMES.items():
        for name in names:
            value = get(name)
            if value:
                keys[provider] = Secret(value)
                break

    archive = Path(get(ARCHIVE_ENV_NAME) or "pixery-out").expanduser()
    return Settings(selfhosted_url=url, keys=keys, archive_dir=archive, url_error=url_error)


#: The one sentence saying no self-hosted server is configured, and what to do about it
#: (errors, the status and the panel all say it so).
NOT_CONFIGURED = (
    f"No self-hosted server is configured: set {URL_ENV_NAME} (in the environment or a .env "
    "file) to its address, e.g. http://203.0.113.7:8000."
)
