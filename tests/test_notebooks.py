"""The demo notebooks run top to bottom on a fresh machine, and are committed clean.

Each notebook is executed by nbclient in a real kernel (the venv's python)
against a simulator in this process, with no API keys and an archive in a
temp dir. The notebooks assert what they show, so "no cell raised" means
"everything the text describes happened".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pixery_widgets.core.config import KEY_ENV_NAMES
from pixery_widgets.sim import SimServer

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01-quickstart.ipynb",
    "02-batch-prompts.ipynb",
    "03-self-hosted-server.ipynb",
    "04-cloud-providers.ipynb",
    "05-explore.ipynb",
]
#: Per cell: generous for a kernel on a slow CI box; the simulator draws in 0.05 s.
CELL_TIMEOUT = 90
#: Images each notebook should leave in its archive (the panel's and the code's alike).
ARCHIVED = {
    "01-quickstart.ipynb": 3,
    "02-batch-prompts.ipynb": 6 + 3 + 2 + 2 + 3 + 1,
    "03-self-hosted-server.ipynb": 3 + 2,
    "04-cloud-providers.ipynb": 0,
    "05-explore.ipynb": 6 + 1 + 1,  # the batch, the remixed image, the variation
}


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_demo_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        f"cell {i} ({cell.get('id')})"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name} carries outputs in {', '.join(dirty)}: clear them before committing "
        "(JupyterLab: Edit > Clear Outputs of All Cells, then save)"
    )
    assert "widgets" not in nb.metadata, f"{path.name} carries saved widget state"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_python3_kernel_runs_this_venvs_python(tmp_path: Path) -> None:
    """nbclient's "python3" must start this interpreter, where pixery_widgets is installed."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")]
    )
    NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def _kernel_env(sim_url: str, archive: Path, home: Path) -> dict[str, str]:
    """This process's environment, pointed at the simulator, without any API key."""
    env = dict(os.environ)
    for names in KEY_ENV_NAMES.values():
        for name in names:
            env.pop(name, None)
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        env.pop(name, None)
    env.update(
        {
            "SELFHOSTED_API_URL": sim_url,
            "PIXERY_ARCHIVE_DIR": str(archive),
            "HOME": str(home),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # quiets a debugger warning in the kernel
        }
    )
    return env


def _stderr_texts(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"cell {cell.get('id')}: {out.get('text', '')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    ]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom_against_the_simulator(
    path: Path, sim_factory: Callable[..., SimServer], tmp_path: Path
) -> None:
    sim = sim_factory(gen_seconds=0.05, switch_seconds=0.05)
    workdir = tmp_path / "work"
    workdir.mkdir()
    archive = tmp_path / "archive"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=_kernel_env(sim.url, archive, tmp_path))  # raises on the first failing cell

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells)
    assert not _stderr_texts(nb), "the notebook printed to stderr:\n" + "\n".join(_stderr_texts(nb))
    images = sorted(archive.glob("images/*/*.png")) if archive.exists() else []
    assert len(images) == ARCHIVED[path.name], [p.name for p in images]
    assert not (workdir / "pixery-out").exists()  # PIXERY_ARCHIVE_DIR was honoured
    generated = [r for r in sim.request_log if r.path == "/generate"]
    if path.name == "04-cloud-providers.ipynb":
        assert generated == []  # it explains cloud models without drawing anything
    else:
        assert generated, "the notebook never asked the server for an image"
