"""The save path at real sizes: a 3 MB photo-like PNG is read, checked and archived
without copies of it, and damage anywhere in it is still refused in words.

The quick ways (the image's base64 decoded straight from the answer's bytes, the
PNG's chunks checked and written as views of the received bytes) must give what the
plain ways give: the same image, the same file, the same error.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import pixery_widgets as px
from pixery_widgets.archive import Archive, add_text_chunks, read_text_chunks, write_atomic
from pixery_widgets.archive import files as archive_files
from pixery_widgets.archive.png import text_chunk_parts
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import BadResponseError, ImageDecodeError, PixeryError
from pixery_widgets.core.images import check_image_bytes, png_chunks, split_base64_field
from pixery_widgets.providers import _selfhosted_answers
from pixery_widgets.providers._base import parse_json
from pixery_widgets.sim._draw import DrawKey, render

WHERE = "Your server at http://127.0.0.1:8000 (/generate)"


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A 1024² "photo-heavy" PNG from the simulator, about 3 MB."""
    key = DrawKey("a lighthouse at dusk", "", 1234, 1024, 1024, "animagine")
    raw = base64.b64decode(render(key, "photo-heavy"))
    assert len(raw) > 2_500_000
    return raw


def small_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = small_png()
B64 = base64.b64encode(PNG).decode("ascii")


def outcome(call: Any) -> Any:
    """The result, or the package error's class and words (anything else fails)."""
    try:
        return call()
    except PixeryError as exc:
        return type(exc), str(exc)


def both_ways(body: bytes) -> tuple[Any, Any]:
    quick = outcome(
        lambda: _selfhosted_answers.parse_generate(
            _selfhosted_answers.read_generate_answer(body, where=WHERE)
        )
    )
    plain = outcome(lambda: _selfhosted_answers.parse_generate(parse_json(body, where=WHERE)))
    return quick, plain


# -- the answer's JSON --------------------------------------------------------------------------


def test_the_servers_answer_is_decoded_straight_from_its_bytes(photo: bytes) -> None:
    text = base64.b64encode(photo).decode("ascii")
    body = json.dumps({"image": text, "seed": 7, "parameters": {"steps": 28}}).encode()
    split = split_base64_field(body, "image")
    assert split is not None  # the server's own layout takes the quick way
    image, rest = split
    assert image == photo
    assert rest == {"image": "", "seed": 7, "parameters": {"steps": 28}}
    quick, plain = both_ways(body)
    assert quick == plain == (photo, 7, {"steps": 28})


@pytest.mark.parametrize(
    "body",
    [
        f'{{"seed": 3, "parameters": {{"a": 1}}, "image": "{B64}"}}',  # the image last
        f'{{ "image"\n:\t"{B64}" ,"seed":3}}',  # JSON's whitespace around the colon
        f'{{"image": "data:image/png;base64,{B64}", "seed": 3}}',  # a data: URL
        f'{{"image": "{B64.replace("/", chr(92) + "/")}", "seed": 3}}',  # escaped slashes
        f'{{"image": "{B64[:8]}", "image": "{B64}", "seed": 3}}',  # a second key wins
        f'{{"parameters": {{"image": "{B64}"}}, "image": "{B64}"}}',  # a nested key too
        f'{{"image": "{B64}", "seed": 3, "note": "an \\"image\\": \\"{B64}\\""}}',
        f'{{"image": "", "parameters": {{"image": "{B64}"}}}}',  # the top one is empty
        f'{{"parameters": {{"image": "{B64}"}}}}',  # only a nested one
        f'{{"image": "{B64}", "seed": "abc"}}',  # a bad seed after a good image
        f'{{"image": "{B64[:-9]}", "seed": 3}}',  # base64 cut short
        f'{{"image": "{B64}", "seed": 3',  # JSON cut short
        f'\ufeff{{"image": "{B64}"}}',  # a byte-order mark
        f'[{{"image": "{B64}"}}]',  # not an object
        f'{{"image": "{base64.b64encode(b"hello, not an image").decode()}"}}',
        f'{{"image": "{base64.b64encode(PNG[:-20]).decode()}"}}',  # the PNG cut short
    ],
)
def test_any_layout_of_the_answer_gives_what_its_json_gives(body: str) -> None:
    quick, plain = both_ways(body.encode("utf-8"))
    assert quick == plain


def test_an_answer_that_is_not_plain_goes_the_usual_way() -> None:
    escaped = json.dumps({"image": B64.replace("/", "\\/")}).encode()
    assert split_base64_field(escaped, "image") is None
    twice = f'{{"image": "{B64}", "image": "{B64}"}}'.encode()
    assert split_base64_field(twice, "image") is None
    assert split_base64_field(b'{"images": ["x"]}', "image") is None
    with pytest.raises(BadResponseError, match="not JSON"):
        _selfhosted_answers.read_generate_answer(b"<html>busy</html>", where=WHERE)


# -- the image check ----------------------------------------------------------------------------


def flipped(raw: bytes, at: int) -> bytes:
    damaged = bytearray(raw)
    damaged[at] ^= 0x55
    return bytes(damaged)


def test_a_byte_damaged_deep_inside_a_large_png_is_refused_in_words(photo: bytes) -> None:
    assert check_image_bytes(photo, provider="selfhosted", label="your server") == (1024, 1024)
    idat = [(s, e) for kind, s, e in png_chunks(photo) if kind == b"IDAT"]
    middle_start, middle_end = idat[len(idat) // 2]
    for at in (middle_start + 100, middle_end - 5, len(photo) - 6):  # data, CRC, IEND's CRC
        with pytest.raises(ImageDecodeError, match="not a readable image") as refused:
            check_image_bytes(flipped(photo, at), provider="selfhosted", label="your server")
        assert "your server's answer" in str(refused.value)
    for cut in (len(photo) // 2, len(photo) - 12, len(photo) - 1):
        with pytest.raises(ImageDecodeError, match="cut short or damaged"):
            check_image_bytes(photo[:cut], provider="selfhosted", label="your server")


def test_an_image_that_is_not_a_png_is_still_verified_by_pillow() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, format="JPEG")
    assert check_image_bytes(buf.getvalue(), provider="fal") == (16, 16)
    with pytest.raises(ImageDecodeError, match="not a readable image"):
        check_image_bytes(buf.getvalue()[:40], provider="fal")


# -- the archived file --------------------------------------------------------------------------


def test_the_text_chunks_are_written_around_views_of_the_received_bytes(photo: bytes) -> None:
    texts = {"parameters": "a lighthouse\nSteps: 28", "pixery": '{"a": 1}'}
    parts = text_chunk_parts(photo, texts)
    views = [p for p in parts if isinstance(p, memoryview)]
    assert views and all(v.obj is photo for v in views)  # no copy of the image
    assert sum(len(p) for p in parts if not isinstance(p, memoryview)) < 200  # only the text
    joined = b"".join(parts)
    assert joined == add_text_chunks(photo, texts)
    assert read_text_chunks(joined) == texts
    assert len(joined) == len(photo) + sum(len(k) + len(v) + 13 for k, v in texts.items())


def test_replaced_text_chunks_are_cut_out_of_the_views() -> None:
    once = add_text_chunks(PNG, {"parameters": "old", "other": "kept"})
    parts = text_chunk_parts(once, {"parameters": "new"})
    again = b"".join(parts)
    assert read_text_chunks(again) == {"parameters": "new", "other": "kept"}
    assert again.count(b"parameters") == 1
    assert Image.open(io.BytesIO(again)).size == (8, 6)


def test_pieces_are_written_whole_even_when_the_disk_takes_a_few_bytes_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photo: bytes
) -> None:
    real_writev = os.writev
    calls = []

    def stingy_writev(fd: int, buffers: Any) -> int:
        calls.append(len(buffers))
        first = memoryview(buffers[0])
        return real_writev(fd, [first[: 1 + len(calls) * 7919 % 65536]])  # short writes

    monkeypatch.setattr(archive_files.os, "writev", stingy_writev)
    parts = text_chunk_parts(photo, {"parameters": "x" * 300})
    target = tmp_path / "a.png"
    write_atomic(target, parts, durable=False)
    assert target.read_bytes() == b"".join(parts)
    assert len(calls) > 10
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left


def test_a_large_image_from_the_server_is_archived_whole_with_its_text(
    sim_factory: Any, tmp_path: Path
) -> None:
    sim = sim_factory(texture="photo-heavy")
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "out")
    g = asyncio.run(px.agenerate("a lighthouse at dusk", seed=5, settings=settings))
    assert g.path is not None and len(g.png_bytes) > 2_500_000
    saved = g.path.read_bytes()
    with Image.open(io.BytesIO(saved)) as img:
        img.load()  # whole: every row decodes
        assert img.size == (1024, 1024)
    assert json.loads(read_text_chunks(saved)["pixery"])["prompt"] == "a lighthouse at dusk"

    def image_data(raw: bytes) -> bytes:
        return b"".join(raw[s:e] for kind, s, e in png_chunks(raw) if kind == b"IDAT")

    assert image_data(saved) == image_data(g.png_bytes)  # the pixels exactly as received
    record = Archive(tmp_path / "out", settings=Settings()).get(g.id)
    assert record.path == g.path
