"""The simulator's photo textures: PNGs as big as a photograph's, still deterministic."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageStat

from pixery_widgets.sim import SimConfig, SimServer
from pixery_widgets.sim.__main__ import build_parser, config_from_args
from pixery_widgets.sim._draw import (
    PHOTO_CACHE_SIZE,
    DrawKey,
    draw,
    render,
    render_photo_png_base64,
    render_png_base64,
)

MB = 1_000_000
# The bands the _draw docstring promises at 1024x1024.
BANDS = {
    "flat": (10_000, 200_000),
    "photo": (1.3 * MB, 1.7 * MB),
    "photo-heavy": (2.7 * MB, 3.2 * MB),
}


def key(seed: int = 1, prompt: str = "a lighthouse at dusk", size: int = 1024) -> DrawKey:
    return DrawKey(prompt, "worst quality", seed, size, size, "animagine")


def png_length(image_base64: str) -> int:
    return len(base64.b64decode(image_base64, validate=True))


def generate(url: str, **body: Any) -> httpx.Response:
    body = {"prompt": "a lighthouse at dusk", "negative_prompt": "worst quality", "seed": 7, **body}
    return httpx.post(f"{url}/generate", json=body, timeout=30)


# --- drawing -------------------------------------------------------------------------


@pytest.mark.parametrize("texture", ["photo", "photo-heavy"])
def test_a_photo_is_the_same_bytes_every_time_it_is_drawn(texture: str) -> None:
    render_photo_png_base64.cache_clear()
    first = render(key(3), texture)  # type: ignore[arg-type]
    render_photo_png_base64.cache_clear()
    assert render(key(3), texture) == first  # type: ignore[arg-type]
    assert render(key(4), texture) != first  # type: ignore[arg-type]
    assert render(key(3, "another prompt"), texture) != first  # type: ignore[arg-type]


def test_a_photo_is_the_same_bytes_in_another_process() -> None:
    script = (
        "import hashlib\n"
        "from pixery_widgets.sim._draw import DrawKey, render\n"
        "k = DrawKey('a lighthouse at dusk', 'worst quality', 5, 512, 512, 'animagine')\n"
        "print(hashlib.sha256(render(k, 'photo').encode()).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    here = hashlib.sha256(render(key(5, size=512), "photo").encode()).hexdigest()
    assert out.stdout.strip() == here


@pytest.mark.parametrize("texture", ["flat", "photo", "photo-heavy"])
def test_a_1024_png_is_in_the_documented_band(texture: str) -> None:
    low, high = BANDS[texture]
    for seed, prompt in [(1, "a lighthouse at dusk"), (2, ""), (3, "a long prompt " * 30)]:
        length = png_length(render(key(seed, prompt), texture))  # type: ignore[arg-type]
        assert low <= length <= high, (texture, seed, length)


def test_a_photo_keeps_the_flat_pictures_composition_but_not_its_flat_colours() -> None:
    flat, photo = draw(key(8)), draw(key(8), "photo")
    assert flat.size == photo.size and photo.mode == "RGB"
    # Seen from afar they are the same picture (grain averages out, the light only dims)...
    small_flat, small_photo = (im.resize((8, 8), Image.Resampling.BOX) for im in (flat, photo))
    pairs = zip(small_flat.tobytes(), small_photo.tobytes(), strict=True)
    assert sum(abs(a - b) for a, b in pairs) / (8 * 8 * 3) < 40
    # ...up close the photo has grain where the flat picture has one colour.
    patch = (300, 300, 340, 340)
    assert len(photo.crop(patch).getcolors(1 << 16) or []) > 10 * len(
        flat.crop(patch).getcolors(1 << 16) or []
    )
    assert max(ImageStat.Stat(photo.crop(patch)).stddev) > 1


def test_an_unknown_texture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown texture"):
        draw(key(), "glossy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="texture"):
        SimConfig(texture="glossy")  # type: ignore[arg-type]


# --- caches --------------------------------------------------------------------------


def test_photos_have_their_own_small_bounded_cache() -> None:
    assert render_photo_png_base64.cache_info().maxsize == PHOTO_CACHE_SIZE <= 16
    render_photo_png_base64.cache_clear()
    flat_before = render_png_base64.cache_info()
    for seed in range(PHOTO_CACHE_SIZE + 3):
        render(key(seed, "cache bound", size=512), "photo")
    photos = render_photo_png_base64.cache_info()
    assert (photos.misses, photos.currsize) == (PHOTO_CACHE_SIZE + 3, PHOTO_CACHE_SIZE)
    assert render_png_base64.cache_info() == flat_before  # photos do not evict flat pictures
    render(key(PHOTO_CACHE_SIZE + 2, "cache bound", size=512), "photo")  # the newest stays
    assert render_photo_png_base64.cache_info().hits == photos.hits + 1


def test_a_full_photo_cache_stays_under_100_mb() -> None:
    biggest = DrawKey("x", "", 1, 1536, 1536, "animagine")  # the largest size /generate allows
    assert PHOTO_CACHE_SIZE * len(render(biggest, "photo-heavy")) < 100 * MB


# --- through a server ----------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[..., SimServer]]:
    started: list[SimServer] = []

    def start(**config: Any) -> SimServer:
        server = SimServer(SimConfig(gen_seconds=0, switch_seconds=0, **config)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_the_default_server_still_sends_small_flat_pictures(
    serve: Callable[..., SimServer],
) -> None:
    assert SimConfig().texture == "flat"
    sim = serve()
    answer = generate(sim.url).json()
    low, high = BANDS["flat"]
    assert low <= png_length(answer["image"]) <= high
    assert answer["image"] == render_png_base64(key(7))


def test_a_photo_server_sends_photo_sized_pictures_the_same_every_time(
    serve: Callable[..., SimServer],
) -> None:
    sim = serve(texture="photo")
    first = generate(sim.url).json()["image"]
    low, high = BANDS["photo"]
    assert low <= png_length(first) <= high
    render_photo_png_base64.cache_clear()
    assert generate(sim.url).json()["image"] == first
    with Image.open(io.BytesIO(base64.b64decode(first))) as image:
        assert image.size == (1024, 1024)


def test_the_texture_can_be_changed_on_a_running_server(serve: Callable[..., SimServer]) -> None:
    sim = serve()
    flat = png_length(generate(sim.url, width=512, height=512).json()["image"])
    snapshot = httpx.post(f"{sim.url}/_sim/config", json={"texture": "photo-heavy"}).json()
    assert snapshot["texture"] == sim.config.texture == "photo-heavy"
    heavy = png_length(generate(sim.url, width=512, height=512).json()["image"])
    assert heavy > 10 * flat
    refused = httpx.post(f"{sim.url}/_sim/config", json={"texture": "glossy"})
    assert refused.status_code == 400 and sim.config.texture == "photo-heavy"


# --- the command line ----------------------------------------------------------------


def test_the_texture_flag_reaches_the_config() -> None:
    parser = build_parser()
    assert config_from_args(parser.parse_args([])).texture == "flat"
    assert config_from_args(parser.parse_args(["--texture", "photo"])).texture == "photo"
    with pytest.raises(SystemExit):
        parser.parse_args(["--texture", "glossy"])


def wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, "the simulator exited"
        try:
            httpx.get(f"{url}/health", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the simulator did not answer"
            time.sleep(0.05)


def test_the_cli_serves_photos_with_texture_photo() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixery_widgets.sim",
            *("--port", "0", "--gen-seconds", "0", "--texture", "photo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        wait_healthy(url, process)
        low, high = BANDS["photo"]
        assert low <= png_length(generate(url).json()["image"]) <= high
    finally:
        process.terminate()
        process.wait(10)
