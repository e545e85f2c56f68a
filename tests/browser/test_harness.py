"""Proof that the browser harness works: widgets render in JupyterLab and clicks reach the kernel."""

from __future__ import annotations

import re

import nbformat
import pytest

from ._lab import LabPage

pytestmark = pytest.mark.browser

COUNT = re.compile(r"^count is \d+$")


def test_widgets_render_and_clicks_reach_kernel(lab: LabPage) -> None:
    name = lab.server.copy_notebook("harness.ipynb")
    lab.open_notebook(name)
    lab.run_all()  # fails with the tracebacks if any cell raised
    lab.find_output("harness notebook ready")

    # Real widget views, not the text/plain fallback ("HBox(children=(Button(...").
    press = lab.wait_for_button("Press me")
    assert "jupyter-button" in (press.get_attribute("class") or "")
    lab.wait_visible(
        lab.notebook.locator(".widget-label", has_text="not pressed"), "label 'not pressed'"
    )
    counter = lab.wait_for_button(COUNT)
    assert counter.inner_text() == "count is 0"
    texts = "\n".join(lab.output_texts())
    for fallback in ("Button(description", "HBox(children", "Counter(", "Error displaying widget"):
        assert fallback not in texts, f"widget not rendered ({fallback!r} in outputs):\n{texts}"
    lab.screenshot("harness-after-run")

    # ipywidgets: click -> kernel on_click -> label.value synced back to the view.
    lab.click_button("Press me")
    lab.wait_visible(
        lab.notebook.locator(".widget-label", has_text=re.compile(r"^pressed$")), "label 'pressed'"
    )
    assert lab.notebook.locator(".widget-label", has_text="not pressed").count() == 0

    # anywidget: click -> custom msg -> Python increments `count` -> synced back to the view.
    lab.click_button(COUNT)
    lab.wait_for_button("count is 1")
    lab.click_button(COUNT)
    lab.wait_for_button("count is 2")

    lab.assert_no_errors()
    lab.screenshot("harness-after-clicks")
    lab.screenshot("harness-after-clicks-panel", panel=True)


def test_env_reaches_kernel_menu_run_all_and_errors(jupyter_lab_factory, browser_page) -> None:
    """A server from ``jupyter_lab_factory(env=...)`` passes env to kernels; Run menu path;
    error outputs are collected (run-all stops at the failing cell)."""
    server = jupyter_lab_factory(env={"PIXERY_HARNESS_PROBE": "probe-1234"})
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import os\nprint('probe=' + os.environ['PIXERY_HARNESS_PROBE'])"
            ),
            nbformat.v4.new_code_cell("1 / 0"),
            nbformat.v4.new_code_cell("print('not reached')"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, server.root_dir / "env_probe.ipynb")

    lab = LabPage(browser_page, server)
    lab.open_notebook("env_probe.ipynb")
    lab.run_all(via_menu=True, check_errors=False)
    lab.find_output("probe=probe-1234")
    errors = lab.error_outputs()
    assert len(errors) == 1 and "ZeroDivisionError" in errors[0], errors
    assert not any("not reached" in t for t in lab.output_texts())
    server.shutdown_all_kernels()
