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
import json
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError

from .errors import ImageDecodeError, InvalidRequestError

if TYPE_CHECKING:
    from typing import TypeAlias

    ReferenceLike: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | Image.Image"
else:
    ReferenceLike = object

__all__ = [
    "MAX_IMAGE_PIXELS",
    "PNG_SIGNATURE",
    "TOO_LARGE",
    "as_references",
    "base64_image_bytes",
    "check_image_bytes",
    "data_url",
    "decode_base64_image",
    "image_type",
    "png_chunks",
    "reference_to_bytes",
    "split_base64_field",
    "thumbnail_png",
]

#: Largest image accepted from any back end, or as a reference (a 4096×4096 image is 16.8 MP).
MAX_IMAGE_PIXELS = 64_000_000
#: The ``reason`` of an ``ImageDecodeError`` for an image that declares too many pixels.
TOO_LARGE = "image too large"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


#: The image types the package recognises by their first bytes: (MIME type, file suffix).
PNG = ("image/png", "png")
JPEG = ("image/jpeg", "jpg")
WEBP = ("image/webp", "webp")
GIF = ("image/gif", "gif")


def image_type(raw: bytes) -> tuple[str, str] | None:
    """(MIME type, file suffix) of PNG, JPEG, WebP or GIF bytes, told by their
    signature; ``None`` for anything else. The one sniff of image bytes."""
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if raw[:3] == b"\xff\xd8\xff":
        return JPEG
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return WEBP
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    return None


def data_url(raw: bytes) -> str:
    """The image as a ``data:`` URL (for small thumbnails embedded in HTML or widget state)."""
    mime = (image_type(raw) or JPEG)[0]
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


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
        return _strict_base64(text)
    except (binascii.Error, ValueError):
        raise ImageDecodeError(
            f"The image in {whose} answer is not valid base64.", provider=provider
        ) from None


#: After a key: JSON's whitespace, a colon, the opening quote of a string.
_COLON_QUOTE = re.compile(rb"[ \t\n\r]*:[ \t\n\r]*\"")


def split_base64_field(body: bytes, key: str) -> tuple[bytes, dict[str, Any]] | None:
    """A JSON answer whose ``key`` holds MBs of base64 → (those bytes decoded, the answer
    with ``""`` in their place); None when the quick way does not apply.

    ``json.loads`` copies such text twice (the body to text, then the string) before
    base64 copies it a third time; here it is decoded straight from the body, and only the
    rest, a few hundred bytes, is parsed as JSON. The quick way applies when ``key``
    appears once as a key and its string needs no unescaping; the rest must parse and
    have ``""`` under ``key`` at the top, so the cut was that value. Anything else
    (escapes, a second ``key``, bad base64, broken JSON) gives None: parse it the usual
    way, for the same result or the same error in words.
    """
    quoted = f'"{key}"'.encode()
    found = body.find(quoted)
    after = _COLON_QUOTE.match(body, found + len(quoted)) if found >= 0 else None
    if after is None:
        return None
    start = after.end()
    end = body.find(b'"', start)
    if end < 0:
        return None
    rest = body[:start] + body[end:]
    if rest.count(quoted) != 1:  # the value held none (base64 has no quote): one key only
        return None
    try:
        data = json.loads(rest)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get(key) != "":
        return None
    if body.startswith(b"data:", start):  # a data: URL: the base64 follows its comma
        comma = body.find(b",", start, end)
        start = end if comma < 0 else comma + 1
    try:
        raw = _strict_base64(memoryview(body)[start:end])
    except (binascii.Error, ValueError):
        return None
    return (raw, data) if raw else None


def _strict_base64(data: str | memoryview) -> bytes:
    """``base64.b64decode(data, validate=True)`` without its copy of ``data`` (MBs here)."""
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(data, strict_mode=True)
    return base64.b64decode(data if isinstance(data, str) else data.tobytes(), validate=True)


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
            if img.format == "PNG":
                whole = _png_is_whole(raw)
            else:
                img.verify()
                whole = True
        if not whole:
            raise ImageDecodeError(
                f"The image in {whose} answer is not a readable image: its PNG data is cut "
                "short or damaged.",
                provider=provider,
            )
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


def png_chunks(data: bytes | memoryview) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk of a PNG, ``end`` past its CRC, without copying one.

    Stops after IEND, or before a chunk that runs past the end of ``data`` (cut short).
    """
    pos = len(PNG_SIGNATURE)
    size = len(data)
    while pos + 12 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > size:
            return
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def _png_is_whole(raw: bytes) -> bool:
    """Every chunk's CRC checks out, through IEND: what Pillow's ``verify()`` checks for a
    PNG, on memoryviews instead of a copy of each chunk (a 3 MB PNG is a few dozen)."""
    view = memoryview(raw)
    for kind, start, end in png_chunks(view):
        (crc,) = struct.unpack_from(">I", view, end - 4)
        if zlib.crc32(view[start + 4 : end - 4]) != crc:
            return False
        if kind == b"IEND":
            return True
    return False


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
