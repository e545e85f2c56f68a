"""The quick-start notebook in a real JupyterLab: it runs top to bottom, and its panel
draws an image when Generate is pressed.

JupyterLab gets SELFHOSTED_API_URL pointing at a simulator in this process and no
API keys, as `make demo` does. The picture taken at the end is the README's first
picture: saved to test-artifacts/screenshots/quickstart.png, and copied over
docs/panel.png when UPDATE_README_PICTURE=1 (so a test run leaves the tree clean).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pixery_widgets.core.config import KEY_ENV_NAMES
from pixery_widgets.sim import SimConfig, SimServer, run_simulator

from ._lab import REPO_ROOT, SCREENSHOT_DIR, JupyterLabServer, LabPage, start_jupyter_lab

if TYPE_CHECKING:
    from playwright.sync_api import Locator

pytestmark = pytest.mark.browser

NOTEBOOK = REPO_ROOT / "notebooks" / "01-quickstart.ipynb"
README_PICTURE = REPO_ROOT / "docs" / "panel.png"
#: The panel (at most 940 px wide) with a margin, once the side bar is folded away.
VIEWPORT = {"width": 1120, "height": 1300}
PROMPT = "1girl, solo, lighthouse at dusk, wind in her hair, looking at viewer"
SIZE = "1216×832"  # a landscape image keeps the picture short


@pytest.fixture
def demo_sim() -> Iterator[SimServer]:
    """A simulator that draws quickly but visibly (make demo draws in 1.5 s)."""
    with run_simulator(SimConfig(gen_seconds=0.4, switch_seconds=0.2)) as sim:
        yield sim


@pytest.fixture
def demo_lab(demo_sim: SimServer) -> Iterator[JupyterLabServer]:
    """JupyterLab as `make demo` starts it: SELFHOSTED_API_URL set, no API keys, and the
    archive in its default place (./pixery-out beside the notebook)."""
    env: dict[str, str | None] = {name: None for names in KEY_ENV_NAMES.values() for name in names}
    env["SELFHOSTED_API_URL"] = demo_sim.url
    env["PIXERY_ARCHIVE_DIR"] = None
    server = start_jupyter_lab(env)
    try:
        yield server
    finally:
        server.stop()


def test_quickstart_runs_in_jupyterlab_and_its_panel_draws_on_generate(
    browser_page, demo_lab: JupyterLabServer, demo_sim: SimServer
) -> None:
    lab = LabPage(browser_page, demo_lab)
    lab.page.set_viewport_size(VIEWPORT)
    lab.open_notebook(demo_lab.copy_notebook(NOTEBOOK))
    lab.execute_command("application:toggle-left-area")  # fold the file browser away
    lab.run_all()  # fails with the tracebacks if any cell (or any of its checks) raised

    panel = lab.notebook.locator(".pixery-panel").first
    lab.wait_visible(
        panel.locator(".pixery-status-line", has_text="Healthy"), "the healthy status line"
    )
    assert panel.locator(".pixery-model-select").input_value() == "animagine"

    # Press Generate as a user would, with a prompt and a size of our own.
    panel.locator("textarea").first.fill(PROMPT)
    # (by its label: the X/Y section's field menus list "Size" among their options)
    panel.get_by_label("Size", exact=True).select_option(label=SIZE)
    drawn_before = sum(r.path == "/generate" for r in demo_sim.request_log)
    lab.click_button("Generate")
    caption = lab.wait_visible(
        panel.locator(".pixery-output .pixery-caption", has_text="wind in her hair"),
        "the caption of the image Generate drew",
    )
    lab.wait_for_button("Generate")  # Cancel turned back into Generate
    assert caption.inner_text().startswith(f"animagine · seed 7 · {SIZE}"), caption.inner_text()
    image = panel.locator(".pixery-output img.jupyter-widget, .pixery-output .widget-image").first
    box = lab.wait_visible(image, "the generated image").bounding_box()
    assert box is not None and box["width"] > 300 and box["width"] > box["height"]
    assert sum(r.path == "/generate" for r in demo_sim.request_log) == drawn_before + 1
    thumbs = panel.locator(".pixery-image-strip .pixery-thumb")
    lab.wait_visible(thumbs.nth(1), "the strip with the notebook's image and this one")
    lab.assert_no_errors()

    take_readme_picture(lab, panel)


def take_readme_picture(lab: LabPage, panel: Locator) -> None:
    """JupyterLab from its menu bar down to the panel's last line: the cell that makes
    the panel at the top, no cursor, no hover, no unsaved-changes dot."""
    lab.execute_command("docmanager:save")
    cell = lab.notebook.locator(".jp-CodeCell").filter(has=lab.page.locator(".pixery-panel")).first
    cell.evaluate("el => el.scrollIntoView({block: 'start'})")
    lab.page.mouse.move(0, VIEWPORT["height"] - 1)
    lab.page.evaluate("() => document.activeElement && document.activeElement.blur()")
    lab.page.wait_for_timeout(500)  # the save, the scroll and the image settle
    bottom = panel.bounding_box()
    assert bottom is not None
    height = min(VIEWPORT["height"], bottom["y"] + bottom["height"] + 12)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "quickstart.png"
    clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
    lab.page.screenshot(path=str(shot), clip=clip)
    if os.environ.get("UPDATE_README_PICTURE") == "1":
        README_PICTURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_PICTURE)
