"""A notebook saved with a gallery open stays light: under 1 MB with its widget state.

A real kernel (nbclient, which stores the widget state as JupyterLab does when asked)
makes 100 images on the simulator, opens a gallery, scrolls it to the end (the
messages its front end sends), opens a record's details, and the notebook is saved.
The weight is measured as ``benchmarks/bench_notebook_weight.py`` measures it: the
saved file's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pixery_widgets.sim import SimServer

MB = 1_000_000

CELLS = [
    """\
import os
os.environ["SELFHOSTED_API_URL"] = {url!r}
os.environ["PIXERY_ARCHIVE_DIR"] = {archive!r}
import pixery_widgets as px
prompts = [f"a lighthouse, a fox and a kite, number {{i}}" for i in range(100)]
batch = await px.arun_batch(prompts, "animagine", seeds=[7], progress=False)
assert batch.ok, batch.summary()""",
    "gallery = px.Gallery()\ngallery",
    """\
def send(command, **fields):  # what the front end's model.send({{command, ...}}) delivers
    content = {{"command": command, **fields}}
    gallery._handle_msg({{"content": {{"data": {{"method": "custom", "content": content}}}},
                         "buffers": []}})

send("more")  # scrolled to the bottom
send("visible", first=70, last=93)
send("open", id=gallery.records[80]["id"])
thumbs = sum(bool(c["thumb"]) for c in gallery.records)
print(len(gallery.records), thumbs)
assert len(gallery.records) == 100 and thumbs <= 24 + 2 * 12""",
]


@pytest.mark.timeout(240)
def test_a_saved_notebook_with_a_gallery_open_stays_under_one_megabyte(
    sim_factory: Callable[..., SimServer], tmp_path: Path
) -> None:
    sim = sim_factory(gen_seconds=0)
    nb = nbformat.v4.new_notebook()
    cells = [c.format(url=sim.url, archive=str(tmp_path / "archive")) for c in CELLS]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "gallery.ipynb"
    nbformat.write(nb, path)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    nbformat.write(nb, path)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    gallery = next(
        w["state"]
        for w in state.values()
        if w["state"].get("_anywidget_id", "").endswith("Gallery")
    )
    assert len(gallery["records"]) == 100 and gallery["detail"]["image"].startswith("data:image")
    size = path.stat().st_size
    assert size < MB, f"{size / MB:.2f} MB; widget state {len(json.dumps(state)) / MB:.2f} MB"
