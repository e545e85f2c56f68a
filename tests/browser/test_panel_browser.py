"""PixeryPanel in a real JupyterLab, against a simulator started by the test.

The simulator runs in this test process; its URL is written into the
notebook's first code cell. Its first ``/health`` answer trickles in slowly,
so the panel is seen drawn before the check ends ("checking…"), then
reordered (local models first); at the end the simulator stops and the
panel shows it offline. A screenshot of every state is saved to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pixery_widgets.sim import SimConfig, SimServer, run_simulator

from ._lab import LabPage

pytestmark = pytest.mark.browser

#: Seconds between bytes of the first /health answer: it takes several seconds in all.
SLOW_HEALTH_BYTE_DELAY = 0.04

SELECT = ".pixery-model-select"


@pytest.fixture
def slow_sim() -> Iterator[SimServer]:
    config = SimConfig(gen_seconds=1.0, switch_seconds=0.2, missing={"noobai"})
    with run_simulator(config) as sim:
        sim.set_fault("/health", "slow_bytes", times=1, delay=SLOW_HEALTH_BYTE_DELAY)
        yield sim


def open_panel(lab: LabPage, sim: SimServer) -> None:
    name = lab.server.copy_notebook("panel.ipynb")
    path = lab.server.root_dir / name
    path.write_text(path.read_text().replace("__SIM_URL__", sim.url))
    lab.open_notebook(name)
    lab.run_all()
    lab.find_output("panel notebook ready")


def option_texts(lab: LabPage) -> list[str]:
    return lab.notebook.locator(f"{SELECT} option").all_inner_texts()


def group_labels(lab: LabPage) -> list[str]:
    return lab.notebook.locator(f"{SELECT} optgroup").evaluate_all(
        "groups => groups.map(g => g.label)"
    )


def selected(lab: LabPage) -> str:
    return lab.notebook.locator(SELECT).input_value()


def test_panel_reorders_after_the_check_refuses_greyed_entries_and_generates(
    lab: LabPage, slow_sim: SimServer
) -> None:
    lab.page.set_viewport_size({"width": 1400, "height": 1700})  # the whole panel in shots
    open_panel(lab, slow_sim)
    panel = lab.notebook.locator(".pixery-panel")
    select = lab.wait_visible(lab.notebook.locator(SELECT), "the model menu")

    # 1. Drawn before the check answered: cloud first, local greyed "checking…".
    status = lab.notebook.locator(".pixery-status-line")
    assert "Checking" in status.inner_text()
    texts = option_texts(lab)
    checking = [t for t in texts if t.endswith("checking…")]
    assert [t.split(" — ")[0] for t in checking] == ["animagine", "pony", "noobai"]
    assert texts.index(checking[0]) > 0, texts
    assert group_labels(lab)[0] == "Cloud"
    assert select.locator("option:not([disabled])").count() == 0  # no keys, server unknown
    lab.screenshot("panel-1-checking", target=panel)

    # 2. The check answers: local models first, under the GPU's name; the default is local.
    lab.wait_visible(
        lab.notebook.locator(".pixery-status-line", has_text="Healthy"), "healthy status", 40
    )
    assert group_labels(lab)[0] == "Local · Simulated RTX 4090"
    assert option_texts(lab)[0].startswith("animagine (loaded)")
    assert selected(lab) == "animagine"
    noobai = select.locator('option[value="noobai"]')
    assert noobai.is_disabled() and "not downloaded" in noobai.inner_text()
    assert "idle" in lab.notebook.locator(".pixery-status-detail").inner_text()
    lab.screenshot("panel-2-healthy", target=panel)

    # 3. A greyed entry cannot be chosen, neither by a user nor by a forged change event.
    with pytest.raises(Exception, match=re.compile("not enabled|Timeout|disabled", re.I)):
        select.select_option("noobai", timeout=2000)
    assert selected(lab) == "animagine"
    select.evaluate(
        "s => { s.value = 'noobai'; s.dispatchEvent(new Event('change', {bubbles: true})); }"
    )
    lab.page.wait_for_timeout(300)
    assert selected(lab) == "animagine"
    offline_cloud = select.locator('option[value="flux-schnell"]')
    assert offline_cloud.is_disabled() and "set FAL_KEY" in offline_cloud.inner_text()

    # 4. Generate: Cancel while it runs, then the image with its caption.
    lab.notebook.locator(".pixery-panel textarea").first.fill("a lighthouse at dusk, 1girl")
    lab.click_button("Generate")
    lab.wait_for_button("Cancel")
    lab.wait_visible(
        lab.notebook.locator(".pixery-status-line", has_text="Busy"), "busy while drawing", 10
    )
    lab.screenshot("panel-3-generating", target=panel)
    image = lab.wait_visible(
        lab.notebook.locator(
            ".pixery-output img.jupyter-widget, .pixery-output .widget-image"
        ).first,
        "the generated image",
        30,
    )
    lab.wait_for_button("Generate")
    caption = lab.notebook.locator(".pixery-output .pixery-caption").inner_text()
    assert caption.startswith("animagine · seed "), caption
    assert "1024×1024" in caption and "lighthouse" in caption
    box = image.bounding_box()
    assert box is not None and box["width"] > 300
    lab.wait_visible(
        lab.notebook.locator(".pixery-status-line", has_text="Healthy"), "healthy again", 10
    )
    lab.screenshot("panel-4-image", target=panel)

    # 5. A second image: the strip of thumbnails brings the first back.
    lab.notebook.locator(".pixery-panel textarea").first.fill("a red bicycle")
    lab.click_button("Generate")
    lab.wait_for_button("Cancel")
    lab.wait_for_button("Generate", timeout=30)
    thumbs = lab.notebook.locator(".pixery-image-strip .pixery-thumb")
    lab.wait_visible(thumbs.nth(1), "the second thumbnail")
    assert "bicycle" in lab.notebook.locator(".pixery-output .pixery-caption").inner_text()
    thumbs.nth(0).click()
    lab.wait_visible(
        lab.notebook.locator(".pixery-output .pixery-caption", has_text="lighthouse"),
        "the first image back",
    )
    lab.screenshot("panel-5-strip", target=panel)

    # 6. The server goes away: Refresh shows it offline; an offline entry cannot be chosen.
    slow_sim.stop()
    lab.click_button("Refresh")
    lab.wait_visible(
        lab.notebook.locator(".pixery-status-line", has_text="Offline"), "offline status", 10
    )
    pony = select.locator('option[value="pony"]')
    assert pony.is_disabled() and pony.inner_text().endswith("offline")
    assert group_labels(lab)[0] == "Cloud"  # cloud first again
    with pytest.raises(Exception, match=re.compile("not enabled|Timeout|disabled", re.I)):
        select.select_option("pony", timeout=2000)
    assert selected(lab) == "animagine"  # what was chosen stays, greyed
    lab.screenshot("panel-6-offline", target=panel)

    # 7. The same panel in the dark theme stays readable.
    with lab.dark_theme():
        lab.screenshot("panel-7-dark", target=panel)
    lab.assert_no_errors()
