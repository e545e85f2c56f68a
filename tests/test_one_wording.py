"""One of each: one caption, one status wording, one "not configured" sentence, one
image sniff, and one palette whose fallbacks live in one file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from env_helpers import Env

from pixery_widgets.core.config import NOT_CONFIGURED, Settings
from pixery_widgets.core.errors import ConfigurationError
from pixery_widgets.core.grid import GridItem, grid_html
from pixery_widgets.core.images import data_url, image_type, thumbnail_png
from pixery_widgets.core.palette import STATIC, style_block, stylesheet
from pixery_widgets.core.types import (
    Generation,
    HealthInfo,
    SelfHostedStatus,
    ServerState,
    caption_line,
)
from pixery_widgets.providers.selfhosted import SelfHostedClient, SelfHostedProvider, client_for
from pixery_widgets.session.batch import Job
from pixery_widgets.session.watcher import ServerWatcher
from pixery_widgets.widgets.status import status_text

URL = "http://203.0.113.7:8000"
PACKAGE = Path(__file__).resolve().parent.parent / "pixery_widgets"


# -- the caption ----------------------------------------------------------------------------


def test_every_caption_words_a_missing_seed_the_same_way():
    generation = Generation(
        png_bytes=b"",
        seed=None,
        model="gemini-flash",
        provider="gemini",
        params={"width": 1024, "height": 1024},
        elapsed_s=2.0,
        cost_usd=0.039,
    )
    job = Job(index=2, prompt="a cat", model="gemini-flash", provider="gemini", seed=None)
    assert generation.caption() == "gemini-flash · random seed · 1024×1024 · 2.0 s · $0.039"
    assert job.label() == "#3 gemini-flash · random seed"
    assert caption_line("pony", 7, "", "1.0 s") == "pony · seed 7 · 1.0 s"


# -- the status and "not configured" --------------------------------------------------------


def test_not_configured_is_one_sentence_in_errors_the_status_and_the_panel(tmp_path):
    assert "SELFHOSTED_API_URL" in NOT_CONFIGURED
    with pytest.raises(ConfigurationError) as info:
        client_for(Settings())
    assert info.value.message == NOT_CONFIGURED
    with pytest.raises(ConfigurationError) as info:
        SelfHostedClient("")
    assert info.value.message == NOT_CONFIGURED
    assert SelfHostedProvider().unavailable_reason(Settings()) == NOT_CONFIGURED
    status = SelfHostedStatus(ServerState.NOT_CONFIGURED)
    assert status.headline() == ("Self-hosted server: not configured", NOT_CONFIGURED)
    line, detail = status_text(ServerWatcher(load=Env(tmp_path).load))
    assert line == "Self-hosted server: not configured"
    assert detail.startswith(NOT_CONFIGURED)


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (SelfHostedStatus(ServerState.CHECKING, url=URL), "Checking your server…"),
        (SelfHostedStatus(ServerState.OFFLINE, url=URL, reason="timed out"), "Offline: timed out"),
        (SelfHostedStatus(ServerState.BUSY, url=URL, reason="loading pony"), "Busy: loading pony"),
        (
            SelfHostedStatus(
                ServerState.HEALTHY,
                url=URL,
                health=HealthInfo("healthy", "pony", ("pony",), gpu_name="RTX 4090"),
            ),
            "Healthy: RTX 4090, pony",
        ),
    ],
)
def test_the_summary_and_the_indicator_say_the_same_words(status, line, tmp_path):
    assert status.headline() == (line, URL)
    assert status.summary() == f"{line} · {URL}"
    watcher = ServerWatcher(load=Env(tmp_path, SELFHOSTED_API_URL=URL).load)
    watcher.status, watcher.checking = status, False
    shown, detail = status_text(watcher)
    assert shown == line and URL in detail


# -- the image sniff ------------------------------------------------------------------------


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    return buf.getvalue()


def test_one_sniff_tells_png_jpeg_webp_and_gif_by_their_first_bytes():
    png = _png()
    assert image_type(png) == ("image/png", "png")
    assert image_type(thumbnail_png(png, 4, fmt="JPEG")) == ("image/jpeg", "jpg")
    assert image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image/webp", "webp")
    assert image_type(b"GIF89a...") == ("image/gif", "gif")
    assert image_type(b"\x89PNX not quite") is None and image_type(b"") is None
    assert data_url(png).startswith("data:image/png;base64,iVBOR")


# -- the palette ----------------------------------------------------------------------------

COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b")


def test_colour_fallbacks_live_only_in_the_palette():
    """No stylesheet but palette.css, and no Python module, names a colour of its own."""
    sheets = {p.name: p.read_text() for p in STATIC.glob("*.css")}
    assert COLOUR.search(sheets.pop("palette.css"))
    assert {
        name: COLOUR.findall(text) for name, text in sheets.items() if COLOUR.search(text)
    } == {}
    for module in PACKAGE.rglob("*.py"):
        if "sim" in module.parts:  # the simulator draws pictures; it is not styled
            continue
        text = module.read_text()
        assert "var(--jp-" not in text, module
        assert not re.search(r"""["'][^"']*(?:color|background)\s*:\s*#""", text), module


def test_every_pixery_variable_a_sheet_uses_is_defined_by_the_palette():
    palette = stylesheet()
    defined = set(re.findall(r"(--pixery-[a-z-]+)\s*:", palette))
    for sheet in STATIC.glob("*.css"):
        used = set(re.findall(r"var\((--pixery-[a-z-]+)\)", sheet.read_text()))
        assert used <= defined, (sheet.name, used - defined)


def test_a_grid_outside_any_widget_carries_the_palette_and_its_classes():
    html = grid_html([GridItem(_png(), "pony · seed 1"), GridItem(None, "x", error="timed out")])
    assert html.startswith(style_block("grid.css"))
    assert "--pixery-error: var(--jp-error-color1" in html
    assert '<div class="pixery pixery-grid">' in html
    assert 'class="pixery-grid-error">timed out<' in html
    assert html.count("<style>") == 1


def test_a_figure_escapes_its_caption_and_embeds_the_image_by_its_type():
    from pixery_widgets.core.grid import figure_html

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
    shown = figure_html(png, 'a <b> "fox"', max_width="512px")
    assert 'src="data:image/png;base64,' in shown
    assert "&lt;b&gt; &quot;fox&quot;" in shown and "<b>" not in shown
    assert shown.count("<figure") == 1 and "max-width:512px" in shown
