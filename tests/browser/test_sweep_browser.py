"""A sweep from the panel's X/Y section in a real JupyterLab, against a simulator started
by the test: open the closed section, pick two fields, type their values (one as an
A1111 range), Generate, and see the contact sheet under the section, its words in the
theme's colours. Screenshots go to test-artifacts/screenshots/ (sweep-1-fields.png,
sweep-2-sheet.png, sweep-3-sheet-dark.png)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixery_widgets.sim import SimConfig, SimServer, run_simulator

from ._lab import LabPage

pytestmark = pytest.mark.browser


@pytest.fixture
def quick_sim() -> Iterator[SimServer]:
    with run_simulator(SimConfig(gen_seconds=0.1, switch_seconds=0.05)) as sim:
        yield sim


def test_a_sweep_from_the_xy_section_shows_its_contact_sheet(
    lab: LabPage, quick_sim: SimServer
) -> None:
    lab.page.set_viewport_size({"width": 1400, "height": 1900})
    # a name of its own: the panel test's panel.ipynb may still be open in the shared Lab
    name = lab.server.copy_notebook("panel.ipynb", "sweep.ipynb")
    path = lab.server.root_dir / name
    path.write_text(path.read_text().replace("__SIM_URL__", quick_sim.url))
    lab.open_notebook(name)
    lab.run_all()
    lab.find_output("panel notebook ready")
    panel = lab.notebook.locator(".pixery-panel")
    lab.wait_visible(
        lab.notebook.locator(".pixery-status-line", has_text="Healthy"), "healthy status", 40
    )
    lab.notebook.locator(".pixery-panel textarea").first.fill("a red car at night, rain")

    section = lab.notebook.locator(".pixery-sweep")
    fields = section.locator("select")
    assert not fields.first.is_visible()  # closed by default
    section.get_by_text("X/Y sweep").click()
    lab.wait_visible(fields.first, "the X field")
    fields.nth(0).select_option(label="CFG scale")
    section.locator("input[type=text]").nth(0).fill("4-8 (+2)")
    fields.nth(1).select_option(label="Prompt S/R")
    section.locator("input[type=text]").nth(1).fill("red, blue")
    lab.wait_visible(
        section.get_by_text("CFG scale 4, 6, 8 × Prompt S/R red, blue: 6 images"), "the preview"
    )
    lab.screenshot("sweep-1-fields", target=panel)

    lab.click_button("Generate")
    lab.wait_for_button("Cancel")
    sheet = lab.wait_visible(
        lab.notebook.locator(".pixery-sweep-sheet"), "the contact sheet", timeout=60
    )
    lab.wait_for_button("Generate")
    assert "6 of 6 done" in lab.notebook.locator(".pixery-progress").inner_text()
    caption = section.inner_text()
    assert "6/6 images" in caption and "archived as" in caption and "sheets" in caption
    box = sheet.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 300
    natural = sheet.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural[0] > 1000 and natural[1] > 500  # the sheet, not a single image
    sheet.scroll_into_view_if_needed()
    caption = ".pixery-sweep .pixery-muted"  # the preview line and the sheet's caption
    light = lab.colour_and_theme(caption, "color", "--jp-ui-font-color2")
    assert light is not None and light[0] == light[1], light
    lab.screenshot("sweep-2-sheet", target=panel)
    with lab.dark_theme():
        dark = lab.colour_and_theme(caption, "color", "--jp-ui-font-color2")
        lab.screenshot("sweep-3-sheet-dark", target=panel)
    assert dark is not None and dark[0] == dark[1] != light[0], dark
    lab.assert_no_errors()
