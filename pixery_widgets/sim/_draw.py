"""Deterministic stand-in pictures: the same request always gives the same PNG bytes.

Pictures are gradients and shapes chosen by a hash of the request, with the prompt
and seed written as a caption, so a person (or a test) can tell them apart at a
glance. Encoded results are cached because benchmarks time the client against this
server and the drawing must cost next to nothing on a repeat.

Flat pictures compress to tens of KB, far below what a real SDXL server sends, so
the "photo" textures add what makes a photograph big as a PNG: uneven light, soft
edges, mottling and grain. At 1024x1024 "photo" gives about 1.5 MB (1.3-1.7) and
"photo-heavy", a high-ISO shot, about 3 MB (2.7-3.2); sizes scale with the pixel
count, and drawing plus encoding takes about 0.2 s. The grain comes from
``random.Random`` seeded by the request, so a photo is as deterministic as a flat
picture, and it keeps the flat picture's composition. Photos have their own,
smaller cache: they are thirty to fifty times bigger.
"""

from __future__ import annotations

import base64
import colorsys
import hashlib
import io
import random
import textwrap
from functools import lru_cache
from typing import Literal, NamedTuple, get_args

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

RGB = tuple[int, int, int]
Texture = Literal["flat", "photo", "photo-heavy"]
TEXTURES: tuple[Texture, ...] = get_args(Texture)
PHOTO_CACHE_SIZE = 8  # at most about 70 MB: 8 x 8.9 MB of base64 (1536x1536 photo-heavy)


class Grain(NamedTuple):
    """How much noise a photo texture adds, as spreads in levels of 0-255."""

    luma: int  # grey grain, the same on all channels (film grain, sensor noise)
    chroma: int  # colour grain, independent per channel (what makes PNGs of photos big)
    mottle: int = 24  # blotches a few dozen pixels wide (uneven surfaces, soft detail)


GRAIN: dict[Texture, Grain] = {"photo": Grain(8, 2), "photo-heavy": Grain(128, 64)}


class DrawKey(NamedTuple):
    """Everything in a request that decides a picture; hashable so it can key the cache.

    The server's texture is the one other input, passed beside the key so that a
    flat picture keeps the bytes it had before textures existed."""

    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int
    model: str
    lora_name: str | None = None
    lora_scale: float = 0.0
    tint: RGB | None = None  # mean colour of an IP-Adapter reference
    tint_strength: float = 0.0


def reference_tint(image_bytes: bytes) -> RGB:
    """Mean colour of a reference image; raises ValueError when it is not an image."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as im:
            im.draft("RGB", (64, 64))
            small = im.convert("RGB").resize((1, 1), Image.Resampling.BOX)
    except Exception as exc:  # Pillow raises many kinds for bad input
        raise ValueError(f"cannot read the reference image: {exc}") from exc
    r, g, b = small.getpixel((0, 0))  # type: ignore[misc]
    return (r, g, b)


def _colour(rng: random.Random, saturation: float, value: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), saturation, value)
    return (int(r * 255), int(g * 255), int(b * 255))


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError):  # Pillow < 10.1, or built without FreeType: small bitmap font
        return ImageFont.load_default()


def _background(rng: random.Random, width: int, height: int) -> Image.Image:
    """A two-colour gradient at a random angle, drawn small then scaled (cheap)."""
    ramp = Image.linear_gradient("L").rotate(
        rng.uniform(0, 360), Image.Resampling.BILINEAR, expand=False
    )
    ramp = ramp.crop((48, 48, 208, 208))  # drop the corners left empty by the rotation
    dark, light = _colour(rng, 0.7, 0.35), _colour(rng, 0.5, 0.95)
    small = ImageOps.colorize(ramp, dark, light)
    return small.resize((width, height), Image.Resampling.BILINEAR)


def _shapes(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int) -> None:
    for _ in range(rng.randint(7, 13)):
        x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(-0.1, 0.8) * height
        size = rng.uniform(0.08, 0.45) * min(width, height)
        fill = (*_colour(rng, rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)), rng.randint(110, 230))
        box = (x0, y0, x0 + size, y0 + size * rng.uniform(0.5, 1.5))
        kind = rng.randrange(4)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        elif kind == 2:
            points = [(x0 + rng.uniform(0, size), y0 + rng.uniform(0, size)) for _ in range(3)]
            draw.polygon(points, fill=fill)
        else:
            end = (x0 + rng.uniform(-size, size), y0 + rng.uniform(-size, size))
            draw.line([(x0, y0), end], fill=fill, width=max(2, int(size / 12)))


def _caption(draw: ImageDraw.ImageDraw, key: DrawKey) -> None:
    """Prompt and seed at the bottom, so a picture says what asked for it."""
    size = max(12, key.width // 48)
    font = _font(size)
    chars = max(10, int(key.width / (size * 0.55)))
    lines = textwrap.wrap(key.prompt, chars, max_lines=3, placeholder=" ...") or ["(empty prompt)"]
    lora = f" · lora {key.lora_name}@{key.lora_scale:g}" if key.lora_name else ""
    lines.append(f"seed {key.seed} · {key.model} · {key.width}x{key.height}{lora}")
    band = (size + 6) * len(lines) + 12
    draw.rectangle((0, key.height - band, key.width, key.height), fill=(0, 0, 0, 170))
    for i, line in enumerate(lines):
        draw.text(
            (10, key.height - band + 6 + i * (size + 6)), line, font=font, fill=(255, 255, 255, 255)
        )


def _model_frame(draw: ImageDraw.ImageDraw, key: DrawKey) -> None:
    """A frame coloured by the model, so switching models is visible too."""
    rng = random.Random(key.model)
    colour = (*_colour(rng, 0.9, 0.9), 255)
    draw.rectangle(
        (0, 0, key.width - 1, key.height - 1), outline=colour, width=max(4, key.width // 100)
    )


def _levels(low: int, high: int) -> list[int]:
    """A lookup table squeezing 0-255 into low..high-1."""
    return [low + value * (high - low) // 256 for value in range(256)]


def _field(
    rng: random.Random, mode: str, cells: tuple[int, int], size: tuple[int, int]
) -> Image.Image:
    """Random values on a grid of ``cells``, scaled up smoothly (bicubic) to ``size``."""
    grid = Image.frombytes(mode, cells, rng.randbytes(cells[0] * cells[1] * len(mode)))
    return grid if cells == size else grid.resize(size, Image.Resampling.BICUBIC)


def _grey(image: Image.Image) -> Image.Image:
    return Image.merge("RGB", (image, image, image))


def _photographic(image: Image.Image, rng: random.Random, grain: Grain) -> Image.Image:
    """Uneven light, soft edges, mottling and grain over a flat picture."""
    size = image.size
    light = _field(rng, "L", (3, 3), size).point(_levels(170, 256))
    image = ImageChops.multiply(image, _grey(light))
    image = image.filter(ImageFilter.BoxBlur(max(1, size[0] // 512)))
    cells = (max(2, size[0] // 24), max(2, size[1] // 24))
    mottle = _field(rng, "L", cells, size).point(_levels(0, grain.mottle))
    luma = _field(rng, "L", size, size).point(_levels(0, grain.luma))
    spread = grain.mottle + grain.luma
    image = ImageChops.add(image, _grey(ImageChops.add(mottle, luma)), 1.0, -(spread // 2))
    if grain.chroma:
        chroma = _field(rng, "RGB", size, size).point(_levels(0, grain.chroma) * 3)
        image = ImageChops.add(image, chroma, 1.0, -(grain.chroma // 2))
    return image


def draw(key: DrawKey, texture: Texture = "flat") -> Image.Image:
    """The picture for a request, as a Pillow image (uncached)."""
    if texture not in TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; known: {', '.join(TEXTURES)}")
    digest = hashlib.sha256(repr(key).encode()).digest()
    rng = random.Random(digest)
    image = _background(rng, key.width, key.height)
    if key.tint is not None and key.tint_strength > 0:
        image = Image.blend(image, Image.new("RGB", image.size, key.tint), 0.5 * key.tint_strength)
    _shapes(ImageDraw.Draw(image, "RGBA"), rng, key.width, key.height)
    if texture != "flat":  # its own random stream, so the composition stays the flat one's
        image = _photographic(image, random.Random(digest + texture.encode()), GRAIN[texture])
    pen = ImageDraw.Draw(image, "RGBA")
    _model_frame(pen, key)
    _caption(pen, key)
    return image


def _png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@lru_cache(maxsize=32)
def render_png_base64(key: DrawKey) -> str:
    """Bare base64 of the flat PNG for a request; cached so repeats cost nothing."""
    return _png_base64(draw(key))


@lru_cache(maxsize=PHOTO_CACHE_SIZE)
def render_photo_png_base64(key: DrawKey, texture: Texture) -> str:
    """Bare base64 of a photo-textured PNG; a smaller cache, as each is MBs."""
    return _png_base64(draw(key, texture))


def render(key: DrawKey, texture: Texture = "flat") -> str:
    """Bare base64 of the PNG for a request in ``texture``, from that texture's cache."""
    return render_png_base64(key) if texture == "flat" else render_photo_png_base64(key, texture)
