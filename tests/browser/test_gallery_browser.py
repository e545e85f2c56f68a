"""The gallery in a real JupyterLab: search, details, a star by key, compare, remix, generate.

A simulator runs in this test process; the notebook (fixtures/gallery.ipynb) makes a
batch of six on it, then shows a panel and a gallery linked to it. Screenshots of
each view are saved to test-artifacts/screenshots/, in the light theme and the dark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pixery_widgets.sim import SimConfig, SimServer, run_simulator

from ._lab import LabPage

pytestmark = pytest.mark.browser

#: The notebook's first gallery (the panel's details view is one too, in "details" mode).
MAIN = """document.querySelector('.pixery-gallery[data-mode="gallery"]')"""


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with run_simulator(SimConfig(gen_seconds=0.3, switch_seconds=0.1)) as server:
        yield server


def open_gallery(lab: LabPage, sim: SimServer, archive: Path) -> None:
    name = lab.server.copy_notebook("gallery.ipynb")
    path = lab.server.root_dir / name
    text = path.read_text().replace("__SIM_URL__", sim.url).replace("__ARCHIVE__", str(archive))
    path.write_text(text)
    lab.open_notebook(name)
    lab.run_all()
    lab.find_output("gallery notebook ready")


def dark(lab: LabPage, shots: dict[str, object]) -> None:
    """The same views in JupyterLab Dark (the theme is put back afterwards)."""
    lab.execute_command("apputils:change-theme", {"theme": "JupyterLab Dark"})
    try:
        lab.page.wait_for_function(
            "() => document.body.dataset.jpThemeLight === 'false'", timeout=15000
        )
        lab.page.wait_for_timeout(500)
        for name, target in shots.items():
            lab.screenshot(f"{name}-dark", target=target)
    finally:
        lab.execute_command("apputils:change-theme", {"theme": "JupyterLab Light"})


def test_search_open_star_compare_and_remix_into_a_panel_that_generates(
    lab: LabPage, sim: SimServer, tmp_path: Path
) -> None:
    lab.page.set_viewport_size({"width": 1400, "height": 1600})
    open_gallery(lab, sim, tmp_path / "archive")
    gallery = lab.notebook.locator('.pixery-gallery[data-mode="gallery"]').first
    small = lab.notebook.locator('.pixery-gallery[data-mode="gallery"]').nth(1)
    cells = gallery.locator(".pixery-gallery-cell")
    lab.wait_visible(cells.nth(5), "six thumbnails")
    assert gallery.locator(".pixery-gallery-count").inner_text() == "6 images"
    assert cells.first.locator("img").get_attribute("src").startswith("data:image/jpeg")
    lab.screenshot("gallery-1-grid", target=gallery)
    # Pages of two: the front end asks for more until its box is full (or all are in).
    lab.wait_visible(small.locator(".pixery-gallery-cell").nth(5), "every page of the small one")
    assert small.locator(".pixery-gallery-count").inner_text() == "6 images"

    # 1. Search: the words of the prompt, as a prefix.
    gallery.locator(".pixery-gallery-search").fill("bicyc")
    lab.page.wait_for_function(
        f"() => {MAIN}.querySelectorAll('.pixery-gallery-cell').length === 2"
    )
    assert gallery.locator(".pixery-gallery-count").inner_text() == "2 images"
    assert all("bicycle" in t for t in cells.evaluate_all("cs => cs.map(c => c.title)"))

    # 2. A click opens the details; `s` stars it; Esc closes; the grid shows the star.
    cells.first.click()
    detail = lab.wait_visible(gallery.locator(".pixery-detail"), "the details view")
    assert "a red bicycle in the rain" in detail.locator(".pixery-detail-params").inner_text()
    assert detail.locator(".pixery-detail-a1111").inner_text().startswith("a red bicycle")
    assert detail.locator(".pixery-detail-image img").get_attribute("src").startswith("data:")
    lab.page.keyboard.press("s")
    lab.wait_visible(detail.locator(".pixery-detail-star", has_text="★ Starred"), "starred")
    lab.screenshot("gallery-2-details", target=gallery)
    lab.page.keyboard.press("Escape")
    lab.wait_visible(cells.first, "the grid again")
    assert cells.first.locator(".pixery-gallery-star").is_visible()
    assert not cells.nth(1).locator(".pixery-gallery-star").is_visible()
    lab.page.keyboard.press("ArrowRight")  # the cursor moves on from the one just closed
    lab.page.wait_for_function(
        f"() => {MAIN}.querySelectorAll('.pixery-gallery-cell')[1]"
        ".classList.contains('pixery-gallery-focus')"
    )

    # 3. Ctrl+click two, Compare: side by side, what differs marked.
    cells.nth(0).click(modifiers=["Control"])
    cells.nth(1).click(modifiers=["Control"])
    lab.wait_visible(gallery.locator(".pixery-gallery-selected", has_text="2 selected"), "2 chosen")
    gallery.get_by_role("button", name="Compare").click()
    compare = lab.wait_visible(gallery.locator(".pixery-compare"), "the compare view")
    assert compare.locator(".pixery-compare-item").count() == 2
    differs = compare.locator("tr.pixery-compare-differs th").all_inner_texts()
    assert differs == ["Seed"], differs
    lab.screenshot("gallery-3-compare", target=gallery)
    shots = {"gallery-3-compare": gallery}
    dark(lab, shots)
    compare.get_by_role("button", name="× Close").click()
    gallery.get_by_role("button", name="Clear selection").click()

    # 4. Remix one into the panel, change it, and generate there.
    cells.nth(1).click()
    detail = lab.wait_visible(gallery.locator(".pixery-detail"), "the details view")
    seed = detail.locator("tr", has_text="Seed").locator("td").inner_text()
    dark(lab, {"gallery-2-details": gallery})
    detail.get_by_role("button", name="Remix").click()
    lab.wait_visible(gallery.locator(".pixery-gallery-message", has_text="into the panel"), "said")
    panel = lab.notebook.locator(".pixery-panel")
    prompt = panel.locator("textarea").first
    assert prompt.input_value() == "a red bicycle in the rain"
    assert panel.locator(".widget-text input").first.input_value() == seed
    prompt.fill("a red bicycle in the rain, at night")
    lab.click_button("Generate")
    lab.wait_for_button("Generate", timeout=30)
    caption = lab.wait_visible(
        panel.locator(".pixery-output .pixery-caption", has_text="at night"), "the new image", 30
    )
    assert f"seed {seed}" in caption.inner_text()
    lab.screenshot("gallery-4-panel", target=panel)

    # 5. The new image is at the top of the gallery by itself (no refresh).
    gallery.get_by_role("button", name="× Close").click()
    gallery.locator(".pixery-gallery-search").fill("night")
    lab.page.wait_for_function(
        f"() => {MAIN}.querySelectorAll('.pixery-gallery-cell').length === 1"
    )
    gallery.locator(".pixery-gallery-search").fill("")
    lab.page.wait_for_function(
        f"() => {MAIN}.querySelectorAll('.pixery-gallery-cell').length === 7"
    )
    assert "at night" in cells.first.get_attribute("title")
    lab.screenshot("gallery-5-grid-after", target=gallery)

    # 6. The panel's image: starred from there, and the same details view under it.
    lab.page.set_viewport_size({"width": 1400, "height": 2600})  # the panel and its details
    lab.click_button("☆ Star")
    lab.wait_for_button("★ Starred")
    lab.click_button("Details")
    strip_detail = lab.wait_visible(panel.locator(".pixery-detail"), "the panel's details view")
    assert "at night" in strip_detail.locator(".pixery-detail-params").inner_text()
    assert strip_detail.locator(".pixery-detail-star", has_text="★ Starred").is_visible()
    assert strip_detail.locator(".pixery-detail-head").get_by_role("button", name="‹").count() == 0
    lab.wait_visible(cells.first.locator(".pixery-gallery-star"), "the gallery hears of the star")
    lab.screenshot("gallery-6-panel-details", target=panel)
    dark(lab, {"gallery-5-grid-after": gallery, "gallery-4-panel": panel,
               "gallery-6-panel-details": panel})  # fmt: skip
    strip_detail.get_by_role("button", name="× Close").click()
    panel.locator(".pixery-detail").wait_for(state="detached", timeout=10_000)  # closed again
    lab.assert_no_errors()
    errors = [c for c in lab.console if c.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors
