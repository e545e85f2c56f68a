"""Images in and out of the cloud providers: what every one of them does alike.

Kept apart from sending (``_cloud_send``) because this is the shaping around a
request, not its delivery: a reference image encoded for a request body, the
nearest size a provider offers, an answer's image decoded or downloaded (without
credentials: another host) and checked, and the ``Generation`` it becomes, with
the parameters every provider records.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ..core.catalog import ModelSpec
from ..core.config import Settings
from ..core.errors import BadResponseError
from ..core.images import base64_image_bytes, check_image_bytes
from ..core.types import Generation, GenerationRequest
from . import _cloud_send
from ._cloud import _hostname

if TYPE_CHECKING:
    from ._cloud import Service

__all__ = [
    "MAX_IMAGE_BYTES",
    "check_image",
    "decode_image",
    "encode_reference",
    "fetch_image",
    "finished",
    "image_mime",
    "nearest",
]

#: Largest image downloaded from a URL in an answer.
MAX_IMAGE_BYTES = 48 * 1024 * 1024

_T = TypeVar("_T")


# -- references and sizes ----------------------------------------------------------------


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


def nearest(width: int, height: int, options: Sequence[tuple[_T, int, int]]) -> _T:
    """The option whose aspect ratio is closest to width:height (first wins a tie)."""
    target = math.log(width / height)
    return min(options, key=lambda o: abs(math.log(o[1] / o[2]) - target))[0]


# -- the answer's image ------------------------------------------------------------------


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
    _status, _headers, body = await _cloud_send.call(
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
