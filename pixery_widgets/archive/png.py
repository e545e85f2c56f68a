"""PNG text chunks, written into the received byte stream and read back.

The image data is kept exactly as it arrived: chunks are spliced in after
IHDR, so a paid image is never re-encoded to carry its metadata. The archive
writes the pieces as they are (``text_chunk_parts``: views of the received
bytes around the new chunks), so a 3 MB image is not copied to carry 2 KB of text.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping

from ..core.images import PNG_SIGNATURE
from ..core.images import png_chunks as _png_chunks

__all__ = [
    "PNG_SIGNATURE",
    "add_text_chunks",
    "image_digest",
    "is_png",
    "is_whole_png",
    "read_text_chunks",
    "text_chunk_parts",
]

_TEXT_TYPES = (b"tEXt", b"iTXt", b"zTXt")


def is_png(data: bytes) -> bool:
    return data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"


def is_whole_png(data: bytes) -> bool:
    """A PNG that runs to its IEND chunk (a file cut off while written does not)."""
    return is_png(data) and any(kind == b"IEND" for kind, _, _ in _png_chunks(data))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _text_chunk(key: str, value: str) -> bytes:
    """tEXt when the value is Latin-1 (what most readers expect), else uncompressed iTXt."""
    keyword = key.encode("latin-1")
    try:
        return _chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8"))


def text_chunk_parts(png: bytes, texts: Mapping[str, str]) -> list[bytes | memoryview]:
    """``add_text_chunks`` as pieces to write one after the other: views of ``png`` (no
    copy) around the new chunks, which go right after IHDR.

    Text chunks already there with the same keywords are dropped so readers see
    one value. Raises ``ValueError`` when ``png`` is not a whole PNG.
    """
    if not is_png(png):
        raise ValueError("not a PNG")
    view = memoryview(png)
    parts: list[bytes | memoryview] = []
    kept_from = 0  # start of the run of received bytes kept since the last cut
    saw_iend = False
    for kind, start, end in _png_chunks(png):
        if kind in _TEXT_TYPES:
            keyword = png[start + 8 : end - 4].split(b"\0", 1)[0].decode("latin-1")
            if keyword in texts:  # replaced: cut it out of the run
                parts.append(view[kept_from:start])
                kept_from = end
        elif kind == b"IHDR":
            parts.append(view[kept_from:end])
            parts.extend(_text_chunk(k, v) for k, v in texts.items())
            kept_from = end
        if kind == b"IEND":
            parts.append(view[kept_from:end])
            saw_iend = True
    if not saw_iend:
        raise ValueError("truncated PNG")
    return [part for part in parts if len(part)]


def add_text_chunks(png: bytes, texts: Mapping[str, str]) -> bytes:
    """``png`` with ``texts`` as text chunks right after IHDR; the image data is untouched.

    Text chunks already there with the same keywords are dropped so readers see
    one value. Raises ``ValueError`` when ``png`` is not a whole PNG.
    """
    return b"".join(text_chunk_parts(png, texts))


def read_text_chunks(png: bytes) -> dict[str, str]:
    """Every tEXt, zTXt and iTXt chunk of ``png`` as keyword → text (later ones win)."""
    out: dict[str, str] = {}
    if not is_png(png):
        return out
    for kind, start, end in _png_chunks(png):
        if kind not in _TEXT_TYPES:
            continue
        key, _, rest = png[start + 8 : end - 4].partition(b"\0")
        try:
            if kind == b"tEXt":
                value = rest.decode("latin-1")
            elif kind == b"zTXt":
                value = zlib.decompress(rest[1:]).decode("latin-1")
            else:
                compressed = rest[0]
                _lang, _, rest = rest[2:].partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                value = (zlib.decompress(text) if compressed else text).decode("utf-8")
        except (zlib.error, UnicodeDecodeError, IndexError):
            continue
        out[key.decode("latin-1")] = value
    return out


def image_digest(png: bytes) -> str:
    """A digest of the image alone (every chunk but the text ones): equal for two copies
    of one received image whatever text they carry."""
    digest = hashlib.sha256()
    for kind, start, end in _png_chunks(png):
        if kind not in _TEXT_TYPES:
            digest.update(png[start:end])
    return digest.hexdigest()
