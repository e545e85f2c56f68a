"""The demo notebooks run top to bottom on a fresh machine, and are committed clean.

Each notebook is executed by nbclient in a real kernel (the venv's python)
against a simulator in this process, with no API keys and an archive in a
temp dir. The notebooks assert what they show, so "no cell raised" means
"everything the text describes happened".
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_helpers import kernel_env, output_texts, stderr_texts
from nbclient import NotebookClient

from pixery_widgets.sim import SimServer

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01-quickstart.ipynb",
    "02-batch-prompts.ipynb",
    "03-self-hosted-server.ipynb",
    "04-cloud-providers.ipynb",
    "05-explore.ipynb",
    "06-several-servers.ipynb",
    "07-sweeps.ipynb",
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
    "06-several-servers.ipynb": 12 + 18,
    "07-sweeps.ipynb": 9 + 3 + 12,
}
#: Notebooks that start their own simulators (a pool) instead of using the test's.
OWN_SERVERS = {"06-several-servers.ipynb"}


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


def _run(path: Path, sim: SimServer, tmp_path: Path) -> tuple[nbformat.NotebookNode, list[Path]]:
    """Run the notebook top to bottom against ``sim``: (the executed notebook, its images)."""
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
    client.execute(env=kernel_env(sim.url, archive, tmp_path))  # raises on the first failing cell

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells)
    assert not stderr_texts(nb), "the notebook printed to stderr:\n" + "\n".join(stderr_texts(nb))
    assert not (workdir / "pixery-out").exists()  # PIXERY_ARCHIVE_DIR was honoured
    return nb, sorted(archive.glob("images/*/*.png")) if archive.exists() else []


@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom_against_the_simulator(
    path: Path, sim_factory: Callable[..., SimServer], tmp_path: Path
) -> None:
    sim = sim_factory(gen_seconds=0.05, switch_seconds=0.05)
    _nb, images = _run(path, sim, tmp_path)
    assert len(images) == ARCHIVED[path.name], [p.name for p in images]
    generated = [r for r in sim.request_log if r.path == "/generate"]
    if path.name == "04-cloud-providers.ipynb":
        assert generated == []  # it explains cloud models without drawing anything
    elif path.name in OWN_SERVERS:
        assert generated == []  # its own pool drew everything (the notebook checks itself)
    else:
        assert generated, "the notebook never asked the server for an image"


#: Real servers a notebook may meet, unlike the simulator's defaults: the checkpoint
#: most often not downloaded; and a fresh box without the default checkpoint, with
#: nothing loaded yet, no LoRA files and no IP-Adapter.
PARTIAL_SERVERS: dict[str, dict[str, Any]] = {
    "without-noobai": {"missing": {"noobai"}},
    "bare": {
        "missing": {"animagine"},
        "start_loaded": None,
        "loras": [],
        "ip_adapter_loaded": False,
    },
}
#: Images each notebook leaves on those servers: 02 compares the two models there are,
#: and 03 on the bare server draws no LoRA variants.
ARCHIVED_ON_PARTIAL = {
    "without-noobai": {**ARCHIVED, "02-batch-prompts.ipynb": 6 + 2 + 2 + 2 + 3 + 1},
    "bare": {
        **ARCHIVED,
        "02-batch-prompts.ipynb": 6 + 2 + 2 + 2 + 3 + 1,
        "03-self-hosted-server.ipynb": 1 + 2,
    },
}


#: The notebooks that draw on the user's own server (06 starts a pool of simulators of
#: its own, so what the user's server has downloaded does not reach it).
ON_THE_USERS_SERVER = [p for p in NOTEBOOKS if p.name != "06-several-servers.ipynb"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("server", list(PARTIAL_SERVERS))
@pytest.mark.parametrize("path", ON_THE_USERS_SERVER, ids=_ids(ON_THE_USERS_SERVER))
def test_notebook_runs_on_a_server_without_some_checkpoints_and_says_what_it_left_out(
    path: Path, server: str, sim_factory: Callable[..., SimServer], tmp_path: Path
) -> None:
    config = PARTIAL_SERVERS[server]
    (missing,) = config["missing"]
    sim = sim_factory(gen_seconds=0.05, switch_seconds=0.05, **config)
    nb, images = _run(path, sim, tmp_path)
    assert len(images) == ARCHIVED_ON_PARTIAL[server][path.name], [p.name for p in images]
    asked = {r.json["model"] for r in sim.request_log if r.path in ("/generate", "/switch-model")}
    assert missing not in asked  # left out, not tried and failed
    said = [line for line in output_texts(nb).splitlines() if missing in line.lower()]
    assert any("not downloaded" in line for line in said), said
    if server == "bare" and path.name == "03-self-hosted-server.ipynb":
        assert "has no LoRA files" in output_texts(nb)
