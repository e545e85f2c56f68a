"""OpenAI's Images API (docs/backends.md, "OpenAI").

One ``images/generations`` call; the picture comes back as base64. The
requested size is mapped to the nearest size the model draws.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import httpx

from ..core import schema
from ..core.catalog import CATALOG
from ..core.config import Settings
from ..core.errors import BadResponseError, ContentRefusedError, InvalidRequestError
from ..core.types import Generation, GenerationRequest
from . import _cloud, _cloud_images, _cloud_send
from ._base import OnImage

__all__ = ["OPENAI", "SIZES", "OpenAIProvider", "openai_cost"]

OPENAI = _cloud.Service(
    name="openai",
    label="OpenAI",
    key_host="api.openai.com",
    header="Authorization",
    scheme="Bearer ",
)
URL = "https://api.openai.com/v1/images/generations"
#: gpt-image-1 at high quality can take two minutes.
TIMEOUT = httpx.Timeout(300.0, connect=15.0)

#: The sizes each model draws, square first (it wins a tie).
SIZES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "gpt-image-1": (
        ("1024x1024", 1024, 1024),
        ("1024x1536", 1024, 1536),
        ("1536x1024", 1536, 1024),
    ),
    "dall-e-3": (
        ("1024x1024", 1024, 1024),
        ("1024x1792", 1024, 1792),
        ("1792x1024", 1792, 1024),
    ),
}

#: ``request.extra`` keys passed through, per model (API id): the schema's options.
EXTRAS: dict[str, tuple[str, ...]] = {
    spec.api_id: tuple(o.name for o in schema.options_for(spec))
    for spec in CATALOG.values()
    if spec.provider == "openai"
}

#: gpt-image-1, USD per 1M tokens (OpenAI's price list, 2025): text in, image in, image out.
GPT_IMAGE_TOKEN_PRICES = (5.0, 10.0, 40.0)
#: dall-e-3, USD an image by (quality, square?): OpenAI's price list.
DALLE3_PRICES = {
    ("standard", True): 0.04,
    ("standard", False): 0.08,
    ("hd", True): 0.08,
    ("hd", False): 0.12,
}


def _int(value: Any) -> int:
    """A token count from ``usage``; anything but a sane whole number counts as 0."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**12
    return value if ok else 0


def openai_cost(api_id: str, size: str, quality: Any, usage: Any) -> float | None:
    """The actual cost from ``usage`` (gpt-image-1) or the fixed table (dall-e-3)."""
    if api_id == "dall-e-3":
        q = quality if quality in ("standard", "hd") else "standard"
        return DALLE3_PRICES[(q, size == "1024x1024")]
    if api_id == "gpt-image-1" and isinstance(usage, dict):
        details = usage.get("input_tokens_details")
        details = details if isinstance(details, dict) else {}
        text_in = _int(details.get("text_tokens"))
        image_in = _int(details.get("image_tokens"))
        if not (text_in or image_in):
            text_in = _int(usage.get("input_tokens"))
        out = _int(usage.get("output_tokens"))
        if not (text_in or image_in or out):
            return None
        t, i, o = GPT_IMAGE_TOKEN_PRICES
        return round((text_in * t + image_in * i + out * o) / 1e6, 6)
    return None


class OpenAIProvider(_cloud.CloudProvider):
    """``POST /v1/images/generations``; no reference images."""

    name: ClassVar[str] = "openai"

    def validate(self, request: GenerationRequest) -> None:
        api_id = CATALOG[request.model].api_id
        allowed = EXTRAS.get(api_id, ())
        unknown = sorted(set(request.extra) - set(allowed))
        if unknown:
            takes = ", ".join(allowed) or "no extra options"
            raise InvalidRequestError(
                f"{CATALOG[request.model].display_name} does not take "
                f"{', '.join(unknown)}; it takes {takes}."
            )

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        api_id = CATALOG[request.model].api_id
        sizes = SIZES.get(api_id, SIZES["gpt-image-1"])
        body: dict[str, Any] = {
            "model": api_id,
            "prompt": request.prompt,
            "n": 1,
            "size": _cloud_images.nearest(request.width, request.height, sizes),
        }
        if api_id == "dall-e-3":
            body["response_format"] = "b64_json"
        for name in EXTRAS.get(api_id, ()):
            if request.extra.get(name) is not None:
                body[name] = request.extra[name]
        return body

    async def generate(
        self,
        request: GenerationRequest,
        settings: Settings,
        *,
        on_image: OnImage | None = None,  # not called: the caller archives after the return
    ) -> Generation:
        key = _cloud.require_key(settings, OPENAI)
        started = time.perf_counter()
        spec = CATALOG[request.model]
        body = self.build_body(request)
        data = await _cloud_send.call_json(
            OPENAI,
            "POST",
            URL,
            settings=settings,
            key=key,
            timeout=TIMEOUT,
            json_body=body,
            policy=self.retry,
        )
        if not isinstance(data, dict):
            raise BadResponseError("OpenAI's answer is not a JSON object.", provider=self.name)
        items = data.get("data")
        first = items[0] if isinstance(items, list) and items else None
        if not isinstance(first, dict) or not (first.get("b64_json") or first.get("url")):
            raise ContentRefusedError(
                "OpenAI answered without an image (its 'data' list is empty).",
                provider=self.name,
                status_code=200,
                reason="no image",
            )
        if first.get("b64_json"):
            image = await asyncio.to_thread(_cloud_images.decode_image, first["b64_json"], OPENAI)
        else:  # a URL answer despite b64_json: fetch it, without the key
            image = await _cloud_images.fetch_image(OPENAI, first["url"], settings=settings)
        revised = first.get("revised_prompt")
        return _cloud_images.finished(
            OPENAI,
            request,
            spec,
            image,
            started,
            sent={k: v for k, v in body.items() if k not in ("model", "prompt")},
            extra={"revised_prompt": revised} if isinstance(revised, str) else None,
            cost=openai_cost(spec.api_id, body["size"], body.get("quality"), data.get("usage")),
        )
