"""Image bytes in and out: decoding answers safely, encoding references, thumbnails.

Decoding checks that the bytes are a real image of sane size before anything
else sees them (a decompression bomb is refused, not rendered). These
functions are CPU-bound: answers and thumbnails go through ``asyncio.to_thread``
so the kernel's event loop never stalls on a large image. References given to
``agenerate`` are checked on the loop, once per call (they are small, and a
batch reads its files once, off the loop).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from .errors import ImageDecodeError, InvalidRequestError

if TYPE_CHECKING:
    from typing import TypeAlias

    ReferenceLike: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | Image.Image"
else:
    ReferenceLike = object

__all__ = [
    "MAX_IMAGE_PIXELS",
    "TOO_LARGE",
    "as_references",
    "base64_image_bytes",
    "check_image_bytes",
    "decode_base64_image",
    "reference_to_bytes",
    "thumbnail_png",
]

#: Largest image accepted from any back end, or as a reference (a 4096×4096 image is 16.8 MP).
MAX_IMAGE_PIXELS = 64_000_000
#: The ``reason`` of an ``ImageDecodeError`` for an image that declares too many pixels.
TOO_LARGE = "image too large"


def _whose(label: str) -> str:
    """``"your server"`` → ``"your server's"``: how a message names the answer's sender."""
    return f"{label}'s"


def decode_base64_image(data: object, *, provider: str, label: str | None = None) -> bytes:
    """Base64 text from an answer → image bytes, checked to be a sane image.

    ``provider`` is the back end's name (kept on the error), ``label`` how messages
    call it ("your server", "Gemini"); it defaults to ``provider``.
    """
    raw = base64_image_bytes(data, provider=provider, label=label)
    check_image_bytes(raw, provider=provider, label=label)
    return raw


def base64_image_bytes(data: object, *, provider: str, label: str | None = None) -> bytes:
    """``decode_base64_image`` without the image check (for callers that check it next)."""
    whose = _whose(label or provider)
    if not isinstance(data, str) or not data:
        raise ImageDecodeError(
            f"{whose[:1].upper()}{whose[1:]} answer has no image data (expected base64 text).",
            provider=provider,
        )
    text = data.partition(",")[2] if data.startswith("data:") else data
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageDecodeError(
            f"The image in {whose} answer is not valid base64.", provider=provider
        ) from None


def check_image_bytes(raw: bytes, *, provider: str, label: str | None = None) -> tuple[int, int]:
    """Verify ``raw`` is a decodable image no larger than ``MAX_IMAGE_PIXELS``; its size."""
    whose = _whose(label or provider)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageDecodeError(
                    f"The image in {whose} answer declares {width}×{height} pixels, far too many "
                    "to be real; refused (possible decompression bomb).",
                    provider=provider,
                    reason=TOO_LARGE,
                )
            img.verify()
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError:
        raise ImageDecodeError(
            f"The image in {whose} answer declares far too many pixels to be real; "
            "refused (possible decompression bomb).",
            provider=provider,
            reason=TOO_LARGE,
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageDecodeError(
            f"The image in {whose} answer is not a readable image.", provider=provider
        ) from None
    return width, height


def reference_to_bytes(ref: ReferenceLike) -> bytes:
    """A path, bytes or PIL image → image bytes (PNG for PIL images)."""
    if isinstance(ref, Image.Image):
        buf = io.BytesIO()
        ref.save(buf, format="PNG")
        return buf.getvalue()
    if isinstance(ref, (bytes, bytearray)):
        raw = bytes(ref)
    elif isinstance(ref, (str, os.PathLike)):
        path = Path(ref).expanduser()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InvalidRequestError(
                f"Could not read the reference image {str(path)!r}: {exc.strerror or exc}."
            ) from None
    else:
        raise InvalidRequestError(
            "A reference image must be a file path, image bytes or a PIL image, "
            f"not {type(ref).__name__}."
        )
    try:
        check_image_bytes(raw, provider="reference")
    except ImageDecodeError as exc:
        if exc.reason == TOO_LARGE:
            raise InvalidRequestError(_reference_too_large(_declared_size(raw))) from None
        raise InvalidRequestError("The reference image is not a readable image.") from None
    return raw


def _declared_size(raw: bytes) -> tuple[int, int] | None:
    """The size an image's header declares; None when Pillow will not even open it."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return img.size
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError):
        return None


def _reference_too_large(size: tuple[int, int] | None) -> str:
    limit = (
        f"at most {MAX_IMAGE_PIXELS / 1e6:g} megapixels ({MAX_IMAGE_PIXELS:,} pixels) are accepted"
    )
    if size is None:
        return f"The reference image is too large: it declares far too many pixels even to open; {limit}."
    width, height = size
    megapixels = width * height / 1e6
    return (
        f"The reference image is too large: {width}×{height} pixels ({megapixels:.1f} "
        f"megapixels); {limit}. Scale it down first."
    )


def as_references(reference: ReferenceLike | Sequence[ReferenceLike] | None) -> tuple[bytes, ...]:
    """One reference or several (paths, bytes, PIL images) → their bytes, each checked."""
    if reference is None:
        return ()
    if isinstance(reference, (list, tuple)):
        return tuple(reference_to_bytes(r) for r in reference)
    return (reference_to_bytes(reference),)


def thumbnail_png(raw: bytes, max_side: int = 256, *, fmt: str = "PNG") -> bytes:
    """A small copy of an image for strips and grids (kept light in saved notebooks)."""
    with Image.open(io.BytesIO(raw)) as img:
        img.thumbnail((max_side, max_side))
        if fmt.upper() == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        buf = io.BytesIO()
        if fmt.upper() == "JPEG":
            img.save(buf, format="JPEG", quality=82)
        else:
            img.save(buf, format="PNG", optimize=False)
        return buf.getvalue()
