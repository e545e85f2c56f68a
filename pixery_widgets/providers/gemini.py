"""Google's Gemini image models (docs/backends.md, "Gemini").

One ``generateContent`` call: reference images go as ``inlineData`` parts
before the prompt; the answer's first image part that is not a "thought" is
the picture (else the last thought image). A 200 without one is a refusal and
is reported in the model's own words.
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
from . import _cloud, _cloud_errors, _cloud_images, _cloud_send
from ._base import OnImage

__all__ = ["GEMINI", "GeminiProvider", "gemini_cost"]

GEMINI = _cloud.Service(
    name="gemini",
    label="Gemini",
    key_host="generativelanguage.googleapis.com",
    header="x-goog-api-key",
)
BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
#: Pro models think before drawing; a minute or two is normal.
TIMEOUT = httpx.Timeout(240.0, connect=15.0)

#: USD per 1M tokens: (input, output image, output text and thinking).
#: From Google's price list (2025): 2.5 Flash Image $0.30 in, $30 image out
#: (1290 tokens an image, so $0.039); 3 Pro Image $2 in, $120 image out
#: (1120 tokens at 1K/2K, so $0.134), $12 text/thinking out.
TOKEN_PRICES: dict[str, tuple[float, float, float]] = {
    "gemini-2.5-flash-image": (0.30, 30.0, 2.50),
    "gemini-3-pro-image-preview": (2.00, 120.0, 12.0),
}

#: Aspect ratios Gemini's ``imageConfig.aspectRatio`` accepts.
ASPECT_RATIOS: tuple[tuple[str, int, int], ...] = (
    ("1:1", 1, 1),
    ("2:3", 2, 3),
    ("3:2", 3, 2),
    ("3:4", 3, 4),
    ("4:3", 4, 3),
    ("4:5", 4, 5),
    ("5:4", 5, 4),
    ("9:16", 9, 16),
    ("16:9", 16, 9),
    ("21:9", 21, 9),
)

#: ``request.extra`` keys this provider understands: the schema's options.
EXTRAS = tuple(o.name for o in schema.OPTIONS if "gemini" in o.backends)


def _int(value: Any) -> int:
    """A token count from ``usage``; anything but a sane whole number counts as 0."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**12
    return value if ok else 0


def gemini_cost(api_id: str, usage: Any) -> float | None:
    """The actual cost from ``usageMetadata``, or None when it cannot be computed."""
    prices = TOKEN_PRICES.get(api_id)
    if prices is None or not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("promptTokenCount"))
    candidates = _int(usage.get("candidatesTokenCount"))
    thoughts = _int(usage.get("thoughtsTokenCount"))
    if not (prompt or candidates):
        return None
    details = usage.get("candidatesTokensDetails")
    if isinstance(details, list) and details:
        image = sum(
            _int(d.get("tokenCount"))
            for d in details
            if isinstance(d, dict) and d.get("modality") == "IMAGE"
        )
    else:
        image = candidates  # no breakdown: count it all as image (the upper bound)
    text = max(0, candidates - image) + thoughts
    in_price, image_price, text_price = prices
    return round((prompt * in_price + image * image_price + text * text_price) / 1e6, 6)


def _image_part(parts: list[Any]) -> str | None:
    """The final image's base64: the first non-thought image part, else the last image."""
    found: list[tuple[bool, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict) and inline.get("data"):
            found.append((part.get("thought") is True, inline["data"]))
    for thought, data in found:
        if not thought:
            return data
    return found[-1][1] if found else None


def _said(parts: list[Any]) -> list[str]:
    """The model's own words among ``parts`` (its "thought" parts left out)."""
    return [
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    ]


def _picture_and_words(data: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The answer's picture (base64, or None) and the model's words beside it: from the
    first candidate with an image, else the last candidate that has parts."""
    image_b64: str | None = None
    texts: list[str] = []
    candidates = data.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            image_b64 = _image_part(parts)
            texts = _said(parts)
            if image_b64:
                break
    return image_b64, texts


def _refusal(data: dict[str, Any], settings: Settings) -> ContentRefusedError:
    """A 200 without an image → the model's words, finish reason and block reason."""
    texts: list[str] = []
    finish: str | None = None
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        first = candidates[0]
        finish = first.get("finishReason") if isinstance(first.get("finishReason"), str) else None
        content = first.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts = [t.strip() for t in _said(parts)] if isinstance(parts, list) else []
        if not texts and isinstance(first.get("finishMessage"), str):
            texts.append(first["finishMessage"].strip())
    feedback = data.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    facts = []
    if isinstance(block, str):
        facts.append(f"prompt blocked: {block}")
    if finish:
        facts.append(f"finish reason: {finish}")
    said = " ".join(t for t in texts if t)
    if len(said) > 1000:
        said = said[:997] + "..."
    message = "Gemini answered without an image"
    message += f" ({'; '.join(facts)})" if facts else ""
    message += f'. The model said: "{said}"' if said else "."
    message = _cloud_errors.scrub(message, settings)
    return ContentRefusedError(
        message,
        provider="gemini",
        status_code=200,
        detail={
            "text": _cloud_errors.scrub(said, settings),
            "finish_reason": finish,
            "block_reason": block,
        },
        reason=f"no image ({block or finish or 'refused'})",
    )


class GeminiProvider(_cloud.CloudProvider):
    """``generateContent`` with image output; up to 10 reference images."""

    name: ClassVar[str] = "gemini"

    def validate(self, request: GenerationRequest) -> None:
        unknown = sorted(set(request.extra) - set(EXTRAS))
        if unknown:
            raise InvalidRequestError(
                f"Gemini does not take {', '.join(unknown)}; it takes {', '.join(EXTRAS)}."
            )

    def build_body(
        self, request: GenerationRequest, references: list[tuple[str, str]]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON body, the settings sent, for ``params``)."""
        parts: list[dict[str, Any]] = [
            {"inlineData": {"mimeType": mime, "data": data}} for mime, data in references
        ]
        parts.append({"text": request.prompt})
        image_config: dict[str, Any] = {}
        aspect = request.extra.get("aspect_ratio") or _cloud_images.nearest(
            request.width, request.height, ASPECT_RATIOS
        )
        if aspect != "1:1":  # square is the default; send nothing then
            image_config["aspectRatio"] = aspect
        if request.extra.get("image_size"):
            image_config["imageSize"] = request.extra["image_size"]
        config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
        if image_config:
            config["imageConfig"] = image_config
        body = {"contents": [{"parts": parts}], "generationConfig": config}
        sent: dict[str, Any] = {"aspect_ratio": aspect}
        if "imageSize" in image_config:
            sent["image_size"] = image_config["imageSize"]
        return body, sent

    async def generate(
        self,
        request: GenerationRequest,
        settings: Settings,
        *,
        on_image: OnImage | None = None,  # not called: the caller archives after the return
    ) -> Generation:
        key = _cloud.require_key(settings, GEMINI)
        started = time.perf_counter()
        spec = CATALOG[request.model]
        references = (
            await asyncio.to_thread(
                lambda: [_cloud_images.encode_reference(r) for r in request.references]
            )
            if request.references
            else []
        )
        body, sent = self.build_body(request, references)
        data = await _cloud_send.call_json(
            GEMINI,
            "POST",
            f"{BASE_URL}/models/{spec.api_id}:generateContent",
            settings=settings,
            key=key,
            timeout=TIMEOUT,
            json_body=body,
            policy=self.retry,
        )
        if not isinstance(data, dict):
            raise BadResponseError("Gemini's answer is not a JSON object.", provider=self.name)
        image_b64, texts = _picture_and_words(data)
        if not image_b64:
            raise _refusal(data, settings)
        image = await asyncio.to_thread(_cloud_images.decode_image, image_b64, GEMINI)
        usage = data.get("usageMetadata")
        extra: dict[str, Any] = {}
        said = " ".join(t.strip() for t in texts if t.strip())
        if said:
            extra["model_text"] = _cloud_errors.scrub(said, settings)
        if isinstance(usage, dict):
            extra["usage"] = {k: v for k, v in usage.items() if isinstance(v, int)}
        return _cloud_images.finished(
            GEMINI,
            request,
            spec,
            image,
            started,
            sent=sent,
            extra=extra,
            cost=gemini_cost(spec.api_id, usage),
        )
