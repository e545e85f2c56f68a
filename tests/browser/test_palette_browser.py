"""The one palette in a real JupyterLab: HTML outside any widget (a batch's grid) and
the parts the panel test does not draw (a batch's failure line, an error box, a part
used alone) take their colours from the theme, in light and dark alike.

Each check compares a computed colour with the theme's own variable, so it holds
whatever the theme's values are. Screenshots: test-artifacts/screenshots/palette-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from pixery_widgets.sim import SimConfig, SimServer, run_simulator

from ._lab import LabPage

pytestmark = pytest.mark.browser

CELLS = [
    'import os\nos.environ["SELFHOSTED_API_URL"] = "__SIM_URL__"\n'
    'os.environ["PIXERY_ARCHIVE_DIR"] = "palette-out"',
    "import pixery_widgets as px\n"
    "from pixery_widgets.widgets import ImageOutput, LoraPicker\n"
    "prompts = ['a lighthouse', 'a red bicycle', 'a cat']\n"
    "batch = px.run_batch(prompts, seeds=[1], progress=False)\n"
    "batch",
    'out = ImageOutput()\nout.show_error("Your server refused the request: boom")\nout',
    "picker = LoraPicker()\npicker.show([], enabled=True)  # says: no LoRAs\npicker",
    'print("palette notebook ready")',
]

#: (what, selector, CSS property, the theme variable it must equal)
CHECKS = [
    ("grid caption", ".pixery-grid-cell", "color", "--jp-ui-font-color1"),
    ("grid failure", ".pixery-grid-error", "color", "--jp-error-color1"),
    ("grid placeholder box", ".pixery-grid-box", "background-color", "--jp-layout-color2"),
    ("grid header", ".pixery-grid-head", "color", "--jp-ui-font-color2"),
    ("error box title", ".pixery-error-title", "color", "--jp-error-color1"),
    ("error box", ".pixery-error", "border-left-color", "--jp-error-color1"),
    ("a part alone: its note", ".pixery-lora .pixery-muted", "color", "--jp-ui-font-color2"),
]


@pytest.fixture
def faulty_sim() -> Iterator[SimServer]:
    with run_simulator(SimConfig(gen_seconds=0.05)) as sim:
        sim.set_fault("/generate", "status_503", times=1)
        yield sim


def write_notebook(root: Path, sim: SimServer) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.replace("__SIM_URL__", sim.url)) for c in CELLS]
    path = root / "palette.ipynb"
    nbformat.write(nb, path)
    return path.name


def test_grids_errors_and_a_part_alone_follow_the_theme(lab: LabPage, faulty_sim: SimServer):
    lab.page.set_viewport_size({"width": 1200, "height": 1100})
    lab.open_notebook(write_notebook(lab.server.root_dir, faulty_sim))
    lab.run_all()
    lab.find_output("palette notebook ready")
    grid = lab.wait_visible(lab.notebook.locator(".pixery-grid"), "the batch's grid")
    assert lab.notebook.locator(".pixery-grid-cell img").count() == 2  # one job failed
    assert grid.evaluate("g => getComputedStyle(g.lastElementChild).display") == "flex"

    light = lab.theme_colours(CHECKS)
    assert all(got == want for got, want in light.values()), light
    lab.screenshot("palette-1-light", panel=True)

    with lab.dark_theme():
        dark = lab.theme_colours(CHECKS)
        lab.screenshot("palette-2-dark", panel=True)
    assert all(got == want for got, want in dark.values()), dark
    assert dark["grid caption"] != light["grid caption"]  # the theme really changed them
    lab.assert_no_errors()
