"""PixeryPanel in a real JupyterLab against three simulators, one of them down.

The simulators run in this test process (a SimPool); their URLs, joined with
commas, are written into the notebook's first code cell with a GPU rate. The
status shows the pool's line and a dot and a line per server; the menu says
where each model is loaded. Screenshots in the light and the dark theme go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixery_widgets.sim import SimConfig, SimPool

from ._lab import LabPage

pytestmark = pytest.mark.browser

SELECT = ".pixery-model-select"

#: (what, selector, CSS property, the theme variable it must equal): the server lines'
#: classes take the palette's colours in either theme.
CHECKS = [
    ("a server's line", ".pixery-server-line", "color", "--jp-ui-font-color1"),
    ("its address", ".pixery-server-url", "color", "--jp-ui-font-color2"),
    ("a healthy dot", '.pixery-server[data-state="healthy"] .pixery-dot', "background-color",
     "--jp-success-color1"),
    ("an offline dot", '.pixery-server[data-state="offline"] .pixery-dot', "background-color",
     "--jp-error-color1"),
]  # fmt: skip


@pytest.fixture
def pool_one_down() -> Iterator[SimPool]:
    config = SimConfig(gen_seconds=0.5, switch_seconds=0.2)
    with SimPool(3, config, start_loaded=["animagine", "pony", "noobai"]) as pool:
        pool.stop(1)
        yield pool


def test_three_servers_one_down_show_a_line_each_in_light_and_dark(
    lab: LabPage, pool_one_down: SimPool
) -> None:
    name = lab.server.copy_notebook("pool.ipynb")
    path = lab.server.root_dir / name
    path.write_text(path.read_text().replace("__SIM_URLS__", pool_one_down.selfhosted_api_url))
    lab.open_notebook(name)
    lab.run_all()
    lab.find_output("pool notebook ready")
    status = lab.notebook.locator(".pixery-status")

    lab.wait_visible(
        lab.notebook.locator(".pixery-status-line", has_text="2 of 3 servers up"),
        "the pool's status line",
        40,
    )
    rows = lab.notebook.locator(".pixery-server")
    assert rows.count() == 3
    states = rows.evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert states == ["healthy", "offline", "healthy"]
    texts = rows.all_inner_texts()
    hosts = [url.removeprefix("http://") for url in pool_one_down.urls]
    assert texts[0].startswith(f"1 · {hosts[0]} · Simulated RTX 4090 · animagine loaded")
    assert "idling until then: $0.30" in texts[0]
    assert texts[1].startswith(f"2 · {hosts[1]} · offline: connection refused")
    assert texts[2].startswith(f"3 · {hosts[2]} · Simulated RTX 4090 · noobai loaded")
    detail = lab.notebook.locator(".pixery-status-detail").inner_text()
    assert detail.startswith("$0.30/h each")

    options = lab.notebook.locator(f"{SELECT} option").all_inner_texts()
    assert "animagine · loaded on 1" in options and "noobai · loaded on 3" in options
    groups = lab.notebook.locator(f"{SELECT} optgroup").evaluate_all("g => g.map(x => x.label)")
    assert groups[0] == "Local · 3 servers"  # the one that is down never said its GPU

    dot_colours = rows.locator(".pixery-dot").evaluate_all(
        "dots => dots.map(d => getComputedStyle(d).backgroundColor)"
    )
    assert dot_colours[0] == dot_colours[2] != dot_colours[1]  # healthy, offline, healthy
    light = lab.theme_colours(CHECKS)
    assert all(got == want for got, want in light.values()), light
    lab.screenshot("pool-1-one-down-light", target=status)
    lab.screenshot("pool-2-panel-light", target=lab.notebook.locator(".pixery-panel"))

    with lab.dark_theme():
        dark = lab.theme_colours(CHECKS)
        lab.screenshot("pool-3-one-down-dark", target=status)
    assert all(got == want for got, want in dark.values()), dark
    assert dark["a server's line"] != light["a server's line"]  # the theme really changed it
    lab.assert_no_errors()
