"""The user's own SDXL inference server (docs/backends.md, "The self-hosted server").

Plain HTTP, no authentication: nothing but the request body and a User-Agent
is ever sent, never a cloud key (only a ``user:password@`` the user wrote in the
URL goes along, as Basic auth to that server). The server draws one image at a time and
blocks every other request meanwhile, so this module counts the generations
this process has in flight per server: a health check that times out during
one means "busy", not "offline". Several servers (a pool) are reached through
``pool.py``, which picks one of them for each image and then uses this client.
The server's answers are read in ``_selfhosted_answers``, its errors in
``_selfhosted_errors``.

With ``SELFHOSTED_COST_PER_HOUR`` set, an image costs the GPU time it used:
the rate times the seconds its request took.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from ..core import schema
from ..core.config import NOT_CONFIGURED, URL_ENV_NAME, Settings, mask_url, normalize_url
from ..core.errors import ConfigurationError, ConnectionFailedError
from ..core.types import Generation, GenerationRequest, HealthInfo, LocalModelInfo
from ._base import OnImage, Provider, encode_json, parse_json, send, within
from ._selfhosted_answers import generation_from_answer, parse_health, parse_loras, parse_models
from ._selfhosted_errors import error_from_status
from ._wire import EXPECTS_HTTPS, https_hint, speaks_tls
from .in_flight import generations_in_flight, track_in_flight

__all__ = [
    "BODY_KEYS",
    "GENERATE_TIMEOUT",
    "HEALTH_TIMEOUT",
    "SelfHostedClient",
    "SelfHostedProvider",
    "client_for",
    "error_from_status",
    "generations_in_flight",
]

HEALTH_TIMEOUT = 2.0
#: Quick calls (/models, /loras) once /health has answered.
INFO_TIMEOUT = 10.0
#: The first request after a start or a model switch loads a checkpoint.
GENERATE_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
SWITCH_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
#: How long a dropped plain-http request may wait to learn whether the port speaks TLS
#: (a status check's /health, 2 s at most, and this stay within its 2.5 s).
TLS_PROBE_TIMEOUT = 0.5

# -- the client -------------------------------------------------------------------------


def _where(url: str) -> str:
    return f"Your server at {mask_url(url)}"


def _split_credentials(url: str) -> tuple[str, dict[str, str] | None]:
    """``http://user:pass@host`` → (``http://host``, a Basic ``Authorization`` header).

    The credentials go in the header only, so no URL that httpx logs or puts in an
    error ever carries them.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


class SelfHostedClient:
    """The server's five routes, for one URL; ``cost_per_hour`` prices its images."""

    def __init__(self, url: str, *, cost_per_hour: float | None = None) -> None:
        if not url:
            raise ConfigurationError(NOT_CONFIGURED)
        self.url = normalize_url(url)  # a ConfigurationError for an address httpx cannot use
        self.cost_per_hour = cost_per_hour
        base, self._headers = _split_credentials(self.url)
        # A query (``?token=abc`` for a proxy) goes on every route: /health?token=abc.
        self._base, _, self._query = base.partition("?")

    def __repr__(self) -> str:
        return f"SelfHostedClient({mask_url(self.url)!r})"

    async def _json(
        self,
        method: str,
        path: str,
        *,
        timeout: float | httpx.Timeout,
        body: Any = None,
        content: bytes | None = None,
        parse: bool = True,
    ) -> Any:
        """``body`` as JSON, or ``content`` already encoded; the answer's JSON (its bytes
        with ``parse=False``, for an answer parsed off the event loop)."""
        where = _where(self.url)
        url = self._base + path + (f"?{self._query}" if self._query else "")
        try:
            status, headers, raw = await send(
                method,
                url,
                where=where,
                timeout=timeout,
                json_body=body,
                content=content,
                headers=self._headers,
            )
        except ConnectionFailedError as exc:
            raise await self._maybe_https(exc, where) from None
        if not 200 <= status < 300:
            raise error_from_status(status, raw, where, headers=headers, url=self.url)
        return parse_json(raw, where=f"{where} ({path})") if parse else raw

    async def _maybe_https(self, exc: ConnectionFailedError, where: str) -> ConnectionFailedError:
        """A plain http:// request the server dropped may have hit a TLS port: ask its
        https:// twin of /health (half a second at most) before saying so."""
        if exc.reason != "connection dropped" or not self._base.startswith("http://"):
            return exc
        probe = self._base + "/health" + (f"?{self._query}" if self._query else "")
        try:
            tls = await within(TLS_PROBE_TIMEOUT, speaks_tls(probe))
        except asyncio.TimeoutError:
            tls = False
        if not tls:
            return exc
        return ConnectionFailedError(
            f"{where} closed the connection on a plain http:// request, and its port "
            f"speaks TLS: it is an https:// server; {https_hint(self.url, URL_ENV_NAME)}.",
            provider="selfhosted",
            reason=EXPECTS_HTTPS,
        )

    async def health(self, timeout: float = HEALTH_TIMEOUT) -> HealthInfo:
        return parse_health(await self._json("GET", "/health", timeout=timeout))

    async def models(self, timeout: float = INFO_TIMEOUT) -> dict[str, LocalModelInfo]:
        return parse_models(await self._json("GET", "/models", timeout=timeout))

    async def loras(self, timeout: float = INFO_TIMEOUT) -> tuple[str, ...]:
        return parse_loras(await self._json("GET", "/loras", timeout=timeout))

    async def switch_model(self, model: str) -> str:
        """Load ``model`` without generating (pre-warming)."""
        data = await self._json(
            "POST", "/switch-model", timeout=SWITCH_TIMEOUT, body={"model": model}
        )
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            return data["model"]
        return model

    async def generate(
        self, request: GenerationRequest, *, on_image: OnImage | None = None
    ) -> Generation:
        """Draw one image; ``on_image`` runs in the worker thread that decoded it."""
        started = time.perf_counter()
        route = "/generate"
        with track_in_flight(self.url):
            if request.references:  # MBs of base64: encoded off the kernel's event loop
                content = await asyncio.to_thread(encode_json, _generate_body(request))
                answer = await self._json(
                    "POST", route, timeout=GENERATE_TIMEOUT, content=content, parse=False
                )
            else:
                body = _generate_body(request)
                answer = await self._json(
                    "POST", route, timeout=GENERATE_TIMEOUT, body=body, parse=False
                )
        where = f"{_where(self.url)} ({route})"
        return await asyncio.to_thread(
            generation_from_answer, answer, where, request, started, on_image, self.cost_per_hour
        )


#: Request field (``core/schema.py``) → its key in the ``/generate`` body: every field the
#: schema says this server takes (a test checks), in the server's own names.
BODY_KEYS: dict[str, str] = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "width": "width",
    "height": "height",
    "steps": "steps",
    "cfg_scale": "cfg_scale",
    "seed": "seed",
    "reference": "reference_image",
    "ip_adapter_scale": "ip_adapter_scale",
    "lora": "lora_name",
    "lora_scale": "lora_scale",
}


def _generate_body(request: GenerationRequest) -> dict[str, Any]:
    """The ``/generate`` body (docs/backends.md, "The self-hosted server") for ``request``.

    The server takes one reference image, as bare base64 (no ``data:`` prefix).
    """
    body: dict[str, Any] = {"model": request.model}
    for name, key in BODY_KEYS.items():
        body[key] = getattr(request, schema.field(name).attribute)
    refs = request.references
    body[BODY_KEYS["reference"]] = base64.b64encode(refs[0]).decode("ascii") if refs else None
    return body


class SelfHostedProvider(Provider):
    name: ClassVar[str] = "selfhosted"

    def unavailable_reason(self, settings: Settings) -> str | None:
        if settings.url_error:
            return settings.url_error
        if not settings.selfhosted_url:
            return NOT_CONFIGURED
        return None

    async def generate(
        self,
        request: GenerationRequest,
        settings: Settings,
        *,
        on_image: OnImage | None = None,
    ) -> Generation:
        if len(settings.selfhosted_urls) > 1:  # a pool: pick a server for this image
            from .pool import agenerate_on_pool

            return await agenerate_on_pool(request, settings, on_image=on_image)
        return await client_for(settings).generate(request, on_image=on_image)


def client_for(settings: Settings) -> SelfHostedClient:
    """The client for the configured server, or a ``ConfigurationError`` saying what to set."""
    if settings.url_error:
        raise ConfigurationError(settings.url_error)
    if not settings.selfhosted_url:
        raise ConfigurationError(NOT_CONFIGURED)
    return SelfHostedClient(
        settings.selfhosted_url, cost_per_hour=settings.selfhosted_cost_per_hour
    )
