"""The sync wrappers inside real Jupyter kernels, on every Python the package supports.

``px.generate`` and ``px.run_batch`` run the async core on the kernel's own running loop
by patching it (nest-asyncio2, ``core/sync.py``), which leans on the interpreter's
asyncio. So each supported Python gets a kernel of its own: a venv per version with
this tree installed editable and ipykernel from PyPI, started by nbclient on a small
notebook that draws against a simulator in this process.

The venvs are kept under ``.venv/kernels/`` in the repository and rebuilt only when
the interpreter or ``pyproject.toml`` changes, so a second run starts kernels at once.
A supported Python missing on this machine is skipped, naming the version; finding
none at all is a failure, never a silent pass.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from kernel_helpers import kernel_env, stderr_texts
from nbclient import NotebookClient

from pixery_widgets.sim import SimServer

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
CACHE = ROOT / ".venv" / "kernels"
#: What each kernel's venv gets besides this tree (editable).
KERNEL_PACKAGES = ("ipykernel",)
#: Read now, before the fixtures point HOME at a temp dir: pyenv and pip's cache live there.
REAL_HOME = Path.home()
#: Per cell: the first kernel start on a cold, shared 2-core machine can be slow.
CELL_TIMEOUT = 120


def _pyenv_candidates(version: str) -> list[Path]:
    root = Path(os.environ.get("PYENV_ROOT", REAL_HOME / ".pyenv")) / "versions"
    found = root.glob(f"{version}.*/bin/python") if root.is_dir() else []

    def release(path: Path) -> tuple[int, ...]:  # .../versions/3.10.13/bin/python
        return tuple(int(x) for x in path.parts[-3].split(".") if x.isdigit())

    return sorted(found, key=release, reverse=True)  # the newest patch release first


def find_interpreter(version: str) -> Path | None:
    """A python executable of ``version`` (pyenv's, else one on PATH), checked by running it."""
    on_path = shutil.which(f"python{version}")
    for candidate in [*_pyenv_candidates(version), *([Path(on_path)] if on_path else [])]:
        try:
            out = subprocess.run(
                [str(candidate), "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return candidate
    return None


INTERPRETERS = {version: find_interpreter(version) for version in SUPPORTED}


def _stamp(python: Path) -> str:
    """What a cached venv was built from; any change rebuilds it."""
    full = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"], capture_output=True, text=True
    ).stdout.strip()
    return json.dumps(
        {
            "python": str(python.resolve()),
            "version": full,
            "tree": str(ROOT),
            "pyproject": hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest(),
            "packages": KERNEL_PACKAGES,
        },
        sort_keys=True,
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per venv, should two test runs share this tree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pip_env() -> dict[str, str]:
    """The real home, so pip finds its configuration and its cache."""
    env = dict(os.environ, HOME=str(REAL_HOME), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)  # the kernel must import the installed tree, not ours by path
    return env


def kernel_venv(version: str, python: Path) -> Path:
    """The venv for ``version``, built (or rebuilt) if its stamp does not match."""
    venv = CACHE / f"py{version}"
    stamp_file = venv / "pixery-stamp.json"
    stamp = _stamp(python)
    with _locked(CACHE / f"py{version}.lock"):
        if stamp_file.is_file() and stamp_file.read_text() == stamp:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [str(python), "-m", "venv", str(venv)],
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "-e",
                str(ROOT),
                *KERNEL_PACKAGES,
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, env=_pip_env(), timeout=600)
            assert done.returncode == 0, (
                f"{' '.join(step)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        stamp_file.write_text(stamp)  # last: a half-built venv has no stamp and is rebuilt
    return venv


@pytest.fixture(scope="session")
def venv_for() -> Callable[[str, Path], Path]:
    """Builds each version's venv once per session (and reuses the cached one across runs)."""
    built: dict[str, Path] = {}

    def get(version: str, python: Path) -> Path:
        if version not in built:
            built[version] = kernel_venv(version, python)
        return built[version]

    return get


def _kernel_manager(venv: Path, kernels: Path) -> AsyncKernelManager:
    """A kernel manager that starts ``venv``'s python as an IPython kernel."""
    name = "pixery-kernel-test"
    spec_dir = kernels / name
    spec_dir.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": venv.name, "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name=name, kernel_spec_manager=specs)


CELLS = [
    "import asyncio, json, sys\n"
    "import pixery_widgets as px\n"
    "from pixery_widgets.core.sync import run_sync\n"
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix}))",
    # The sync wrappers, called from a cell while the kernel's loop is running.
    'g = px.generate("a lighthouse at dusk", model="animagine", seed=7)',
    'batch = px.run_batch(["a fox in snow", "a red bicycle"], model="animagine", seeds=[3])',
    # The loop still serves top-level await after the patch, and tasks know who they are.
    'after = await px.agenerate("a lighthouse at dawn", model="animagine", seed=8)',
    "async def current():\n"
    "    return asyncio.current_task() is not None\n"
    "print(json.dumps({\n"
    "    'generate': [g.seed, list(g.image.size), str(g.path), g.path.is_file()],\n"
    "    'batch': [[x.prompt, x.seed, list(x.image.size), x.path.is_file()] for x in batch.generations],\n"
    "    'failed': [str(f.error) for f in batch.failed],\n"
    "    'after': [after.seed, after.path.is_file()],\n"
    "    'status': px.check_selfhosted().state.value,\n"
    "    'current_task': run_sync(current()),\n"
    "    'patch': sorted(m for m in sys.modules if m.startswith('nest_asyncio')),\n"
    "}))",
]


def _printed_json(cell: nbformat.NotebookNode) -> dict:
    (text,) = [o["text"] for o in cell.outputs if o.get("name") == "stdout"]
    return json.loads(text)


def test_at_least_one_supported_python_is_on_this_machine() -> None:
    found = [v for v, python in INTERPRETERS.items() if python is not None]
    assert found, f"none of Python {', '.join(SUPPORTED)} was found (pyenv or PATH)"


@pytest.mark.timeout(900)  # a first run builds the venv: about half a minute, more on a busy box
@pytest.mark.parametrize("version", SUPPORTED)
def test_generate_and_run_batch_work_inside_a_kernel(
    version: str,
    venv_for: Callable[[str, Path], Path],
    sim_factory: Callable[..., SimServer],
    tmp_path: Path,
) -> None:
    python = INTERPRETERS[version]
    if python is None:
        pytest.skip(f"Python {version} is not installed on this machine (pyenv or PATH)")
    venv = venv_for(version, python)
    sim = sim_factory(gen_seconds=0.05, switch_seconds=0.05)
    archive = tmp_path / "archive"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    client = NotebookClient(
        nb,
        km=_kernel_manager(venv, tmp_path / "kernels"),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    env = kernel_env(sim.url, archive, tmp_path)
    env.pop("PYTHONPATH", None)  # the venv's editable install, not this process's path
    client.execute(env=env)  # raises on the first failing cell

    first, result = _printed_json(nb.cells[0]), _printed_json(nb.cells[-1])
    assert first["python"] == version
    assert Path(first["prefix"]).resolve() == venv.resolve()
    seed, size, path, on_disk = result["generate"]
    assert (seed, size, on_disk) == (7, [1024, 1024], True)
    assert Path(path).resolve().is_relative_to(archive.resolve())
    assert result["failed"] == []
    assert result["batch"] == [
        ["a fox in snow", 3, [1024, 1024], True],
        ["a red bicycle", 3, [1024, 1024], True],
    ]
    assert result["after"] == [8, True]
    assert result["status"] == "healthy"
    assert result["current_task"] is True
    assert "nest_asyncio2" in result["patch"] and "nest_asyncio" not in result["patch"]
    assert not stderr_texts(nb), "the kernel printed to stderr:\n" + "\n".join(stderr_texts(nb))
    prompts = [r.json["prompt"] for r in sim.request_log if r.path == "/generate"]
    assert sorted(prompts) == sorted(
        ["a lighthouse at dusk", "a fox in snow", "a red bicycle", "a lighthouse at dawn"]
    )
    assert len(list(archive.glob("images/*/*.png"))) == 4
