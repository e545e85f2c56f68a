"""Notebook weight: how much a saved .ipynb grows when it shows a 50-image batch.

Two small notebooks run in a real kernel (nbclient) against the simulator:
both make the same 50 images with ``px.run_batch``; one then displays the
batch (``batch``), the other displays each PIL image directly (the baseline).
The growth is the saved file's size after running minus before, widget
state included (nbclient stores it, as JupyterLab does when asked to).
Target: < 2 MB (10^6 bytes) for the batch's notebook. Sizes do not depend on
timing, so one run of each is enough.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._harness import Result, sim_process

IMAGES = 50
TARGET_MB = 2.0
MB = 1_000_000

SETUP = """\
import os
os.environ["SELFHOSTED_API_URL"] = {url!r}
os.environ["PIXERY_ARCHIVE_DIR"] = {archive!r}
import pixery_widgets as px
prompts = [f"notebook weight {{i}}" for i in range({n})]
batch = px.run_batch(prompts, "animagine", seeds=[7], width=1024, height=1024)
assert len(batch.generations) == {n}, batch.summary()
"""

SHOW_BATCH = "batch"
SHOW_PIL = "for g in batch.generations:\n    display(g.image)"


def _run_notebook(
    folder: Path, name: str, cells: list[str], *, timeout: int = 180
) -> tuple[int, int, int]:
    """(bytes before running, bytes after, bytes of widget state in the metadata);
    ``timeout``: seconds a cell may take."""
    import json

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    before = path.stat().st_size
    with (folder / f"{name}.kernel.log").open("w") as log:  # the kernel's stderr, kept quiet
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
        ).execute(stderr=log)
    nbformat.write(nb, path)
    widgets = nb.metadata.get("widgets")
    widget_bytes = len(json.dumps(widgets)) if widgets else 0
    return before, path.stat().st_size, widget_bytes


def run(quick: bool = False) -> list[Result]:
    name = "saved .ipynb growth, 50-image batch shown"
    with (
        tempfile.TemporaryDirectory(prefix="pixery-bench-nb-", ignore_cleanup_errors=True) as tmp,
        sim_process(gen_seconds=0, switch_seconds=0) as sim,
    ):
        folder = Path(tmp)
        setup = SETUP.format(url=sim.url, archive=str(folder / "archive"), n=IMAGES)
        b0, b1, b_widgets = _run_notebook(folder, "batch", [setup, SHOW_BATCH])
        p0, p1, p_widgets = _run_notebook(folder, "pil", [setup, SHOW_PIL])

    growth, base = (b1 - b0) / MB, (p1 - p0) / MB
    return [
        Result.bound(
            name,
            growth,
            "MB",
            below=TARGET_MB,
            baseline=base,
            note=(
                f"Growth of the saved file after px.run_batch + displaying the batch; baseline: the "
                f"same batch, then display(g.image) for each of the {IMAGES} images. Widget state "
                f"stored in the notebook: {b_widgets / MB:.2f} MB (batch) / {p_widgets / MB:.2f} MB "
                "(baseline). The simulator's pictures are simple; real SDXL images make the "
                "baseline larger still, thumbnails barely change."
            ),
            data={
                "batch_bytes": [b0, b1],
                "pil_bytes": [p0, p1],
                "widget_state_bytes": {"batch": b_widgets, "pil": p_widgets},
            },
        )
    ]
