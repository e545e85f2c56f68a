"""PNG text chunks, written into the received byte stream and read back.

The image data is kept exactly as it arrived: chunks are spliced in after
IHDR, so a paid image is never re-encoded to carry its metadata.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator, Mapping

__all__ = [
    "PNG_SIGNATURE",
    "add_text_chunks",
    "image_digest",
    "is_png",
    "is_whole_png",
    "read_text_chunks",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = (b"tEXt", b"iTXt", b"zTXt")


def is_png(data: bytes) -> bool:
    return data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"


def is_whole_png(data: bytes) -> bool:
    """A PNG that runs to its IEND chunk (a file cut off while written does not)."""
    return is_png(data) and any(kind == b"IEND" for kind, _, _ in _png_chunks(data))


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, ``end`` past its CRC; stops at IEND or damage."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


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


def add_text_chunks(png: bytes, texts: Mapping[str, str]) -> bytes:
    """``png`` with ``texts`` as text chunks right after IHDR; the image data is untouched.

    Text chunks already there with the same keywords are dropped so readers see
    one value. Raises ``ValueError`` when ``png`` is not a whole PNG.
    """
    if not is_png(png):
        raise ValueError("not a PNG")
    parts: list[bytes] = [PNG_SIGNATURE]
    saw_iend = False
    for kind, start, end in _png_chunks(png):
        if kind in _TEXT_TYPES:
            keyword = png[start + 8 : end - 4].split(b"\0", 1)[0].decode("latin-1")
            if keyword in texts:
                continue
        parts.append(png[start:end])
        if kind == b"IHDR":
            parts.extend(_text_chunk(k, v) for k, v in texts.items())
        saw_iend = saw_iend or kind == b"IEND"
    if not saw_iend:
        raise ValueError("truncated PNG")
    return b"".join(parts)


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
