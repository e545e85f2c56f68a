"""The layers are a rule, not a hope: import-linter keeps arrows pointing down.

The contract lives in ``pyproject.toml``. These tests run it over the real tree
and over a copy with one upward import planted, to show that it can fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    shutil.copytree(
        ROOT / "pixery_widgets",
        tree / "pixery_widgets",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tree


def test_the_package_keeps_its_layer_contracts():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert result.stdout.count("KEPT") == 3


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("core/errors.py", "from ..session import generate"),
        ("providers/selfhosted.py", "from ..archive import store"),
        ("archive/store.py", "from ..session import batch"),
        ("session/menu.py", "from ..widgets import status"),
        ("session/ledger.py", "import ipywidgets"),
        ("sim/_draw.py", "from ..core import errors"),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward):
    tree = copy_tree(tmp_path)
    target = tree / "pixery_widgets" / module
    target.write_text(target.read_text() + f"\n{upward}  # planted\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert module.replace("/", ".").removesuffix(".py") in result.stdout
