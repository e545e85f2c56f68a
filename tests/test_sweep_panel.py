"""The panel's X/Y section, through its Python state, against the real simulator:
closed and off by default, the values it reads, a sweep run in the background with
the batch's bar and Cancel, and the contact sheet shown under the section."""

from __future__ import annotations

import asyncio
import io

from env_helpers import Env
from panel_helpers import ready, until
from PIL import Image

from pixery_widgets.archive.sheets import read_sheet
from pixery_widgets.widgets import PixeryPanel
from pixery_widgets.widgets.sweep_section import SHEET_SIDE, SweepSection


def generations(sim) -> list[dict]:
    return [r.json for r in sim.request_log if r.path == "/generate"]


def test_the_section_is_closed_and_off_until_opened_with_a_field_and_values():
    section = SweepSection()
    assert section.accordion.selected_index is None and not section.is_open
    assert section.accordion.get_title(0) == "X/Y sweep"
    section.x_field.value, section.x_values.value = "cfg_scale", "4-8 (+2)"
    assert section.rows() == ()  # closed: Generate makes one image as before
    section.expand()
    assert section.rows() == (("cfg_scale", "4-8 (+2)"),)
    section.y_field.value, section.y_values.value = "lora", "none, pixel_art"
    assert section.rows() == (("cfg_scale", "4-8 (+2)"), ("lora", "none, pixel_art"))
    assert "CFG scale 4, 6, 8 × LoRA none, pixel_art: 6 images" in section.note.value
    section.y_values.value = "none, 'x"  # still text: fine
    section.x_values.value = "4-8 (+0)"
    assert "never reaches its end" in section.note.value
    assert section.note.value.startswith('<span class="pixery-error-text">')  # error colour
    section.x_field.value = ""
    assert section.rows() == ()  # no X: no sweep
    options = [label for label, _ in section.x_field.options]
    assert options == [
        "—", "Prompt S/R", "Seed", "Steps", "CFG scale", "Size", "LoRA", "LoRA scale", "Model"
    ]  # fmt: skip


def test_generate_with_the_section_open_sweeps_and_shows_the_sheet(tmp_path, sim):
    archive = tmp_path / "archive"

    async def body():
        env = Env(tmp_path, SELFHOSTED_API_URL=sim.url, PIXERY_ARCHIVE_DIR=str(archive))
        panel = PixeryPanel(load=env.load)
        await until(lambda: ready(panel))
        panel.prompt.value = "a red car at night"
        panel.seed.value = "5"
        section = panel.sweep_section
        section.expand()
        section.x_field.value, section.x_values.value = "cfg_scale", "4-8 (+2)"
        section.y_field.value, section.y_values.value = "prompt", "red, blue"
        panel.generate_button.click()
        during = (panel.generate_button.description, panel._progress_box.layout.display)
        await panel.wait_idle()
        return panel, during

    panel, (button, bar) = asyncio.run(body())
    assert button == "Cancel" and bar is None  # the batch's bar while it runs
    batch = panel.batch
    assert batch is not None and batch.ok and len(batch) == 6
    assert [(j.prompt, dict(j.overrides)["cfg_scale"], j.seed) for j in batch.jobs] == [
        (p, c, 5) for c in (4.0, 6.0, 8.0) for p in ("a red car at night", "a blue car at night")
    ]
    assert [b["cfg_scale"] for b in generations(sim)] == [4.0, 4.0, 6.0, 6.0, 8.0, 8.0]
    assert (panel.progress_bar.value, panel.progress_bar.max) == (6, 6)
    sheet = panel.sheet
    assert sheet is not None and (sheet.x.name, sheet.y.name) == ("cfg_scale", "prompt")
    assert sheet.y.labels == ("red", "blue")
    shown = Image.open(io.BytesIO(panel.sweep_section.sheet_image.value))
    assert shown.format == "JPEG" and max(shown.size) <= SHEET_SIDE
    assert panel.sweep_section.sheet_image.layout.display == "block"
    assert "6/6 images" in panel.sweep_section.sheet_caption.value
    saved = sheet.paths[0].relative_to(tmp_path)  # shown relative to the working dir
    assert saved.parts[0] == archive.name and str(saved) in panel.sweep_section.sheet_caption.value
    meta = read_sheet(sheet.paths[0])
    assert [c["record_id"] for c in meta["cells"]] == [
        batch.results[c["job"]].id for c in meta["cells"]
    ]
    assert panel.generate_button.description == "Generate"


def test_cancel_stops_a_sweep_and_its_sheet_shows_what_arrived(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=0.2)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "slow ones"
        panel.sweep_section.expand()
        panel.sweep_section.x_field.value = "steps"
        panel.sweep_section.x_values.value = "10-15"
        panel.generate_button.click()
        await until(lambda: panel.image_output.history, 5.0, "the first image")
        panel.generate_button.click()  # Cancel
        await panel.wait_idle()
        return panel

    panel = asyncio.run(body())
    sheet = panel.sheet
    assert sheet is not None
    statuses = [c.status for c in sheet.cells[0]]
    assert statuses[0] == "ok" and "cancelled" in statuses and len(statuses) == 6
    assert "Cancelled after" in panel.progress_note.value
    assert panel.generate_button.description == "Generate"


def test_a_bad_value_is_said_in_words_and_nothing_is_sent(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "a car"
        panel.sweep_section.expand()
        panel.sweep_section.x_field.value = "cfg_scale"
        panel.sweep_section.x_values.value = "4, 25"
        panel.generate_button.click()
        await panel.wait_idle()
        first = panel.image_output.error
        panel.sweep_section.x_field.value = "prompt"
        panel.sweep_section.x_values.value = "red, blue"  # "red" is not in the prompt
        panel.generate_button.click()
        await panel.wait_idle()
        return panel, first

    panel, first = asyncio.run(body())
    assert first is not None and first.startswith("cfg_scale=25 (x=2 of 2): CFG scale must be")
    assert "did not find 'red'" in (panel.image_output.error or "")
    assert generations(sim) == [] and panel.sheet is None
    assert panel.sweep_section.sheet_image.layout.display == "none"
