"""What `pip install pixery-widgets` gets, built for real, and the docs the code points to.

The sdist and the wheel are built once per run with `python -m build` (the wheel from
the sdist, as pip does) from a copy of this tree, so nothing left over in the working
tree (an old ``*.egg-info``) changes what they hold.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest
from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

import pixery_widgets

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pixery_widgets"
BACKENDS = ROOT / "docs" / "backends.md"
#: Not in the repository, so nothing in it may point there (spelt in two to spare this file).
SPEC_FILE = "CONTRACT" + ".md"

#: Top-level entries that are tools' output, not the project: never copied, never scanned.
_NOT_THE_PROJECT = {
    ".git",
    ".venv",
    "build",
    "dist",
    "test-artifacts",
    "pixery-out",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".briefs",
}
_NOT_THE_PROJECT_ANYWHERE = {"__pycache__", ".ipynb_checkpoints"}


def _ignored(directory: str, names: list[str]) -> set[str]:
    top = Path(directory) == ROOT
    return {
        name
        for name in names
        if name in _NOT_THE_PROJECT_ANYWHERE
        or name.endswith(".egg-info")
        or (top and name in _NOT_THE_PROJECT)
        or (Path(directory).name == "benchmarks" and name == "results")
    }


def _project_files() -> list[Path]:
    """Every file of the project as a clone has it (the same filter as the build copy)."""
    files = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in _NOT_THE_PROJECT or _NOT_THE_PROJECT_ANYWHERE & set(rel.parts):
            continue
        if any(part.endswith(".egg-info") for part in rel.parts):
            continue
        if rel.parts[:2] == ("benchmarks", "results") or not path.is_file():
            continue
        files.append(path)
    return files


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path

    def sdist_names(self) -> list[str]:
        """The sdist's members, without their ``pixery_widgets-X.Y.Z/`` prefix."""
        with tarfile.open(self.sdist) as tar:
            return [m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name]

    def sdist_file(self, name: str) -> bytes:
        with tarfile.open(self.sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.split("/", 1)[-1] == name)
            handle = tar.extractfile(member)
            assert handle is not None, name
            return handle.read()

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.namelist()

    def wheel_file(self, name: str) -> bytes:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.read(name)

    def wheel_metadata(self) -> Message:
        (name,) = [n for n in self.wheel_names() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(self.wheel_file(name).decode())

    def sdist_metadata(self) -> Message:
        return HeaderParser().parsestr(self.sdist_file("PKG-INFO").decode())


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    tree = tmp_path_factory.mktemp("tree") / "pixery-widgets"
    shutil.copytree(ROOT, tree, ignore=_ignored)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(sdist, wheel)


# -- the wheel ---------------------------------------------------------------------------


def test_the_wheel_carries_every_module_the_front_end_files_and_py_typed(dists: Dists) -> None:
    names = set(dists.wheel_names())
    wanted = {
        path.relative_to(ROOT).as_posix()
        for pattern in ("**/*.py", "static/*.js", "static/*.css")
        for path in PACKAGE.glob(pattern)
        if "__pycache__" not in path.parts
    }
    assert any(name.endswith(".js") for name in wanted)  # the widgets' front ends exist
    assert wanted <= names, sorted(wanted - names)
    assert "pixery_widgets/py.typed" in names


def test_the_wheel_carries_no_tests(dists: Dists) -> None:
    tests = [
        n
        for n in dists.wheel_names()
        if n.startswith("tests/") or "/tests/" in n or n.endswith("conftest.py")
    ]
    assert tests == []


# -- the sdist ---------------------------------------------------------------------------


def test_the_sdist_ships_the_whole_test_tree_or_none_of_it(dists: Dists) -> None:
    shipped = {n for n in dists.sdist_names() if n.startswith("tests/") and not n.endswith("/")}
    whole = {
        p.relative_to(ROOT).as_posix()
        for p in _project_files()
        if p.parts[len(ROOT.parts)] == "tests"
    }
    assert "tests/conftest.py" in whole and any(n.startswith("tests/browser/") for n in whole)
    assert shipped in (set(), whole), sorted(shipped ^ whole)


def test_the_sdist_builds_the_wheel_from_what_it_carries(dists: Dists) -> None:
    names = set(dists.sdist_names())
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in"} <= names
    assert "pixery_widgets/__init__.py" in names
    assert "docs/backends.md" in names  # the modules' docstrings point there


# -- both --------------------------------------------------------------------------------


def test_the_license_is_in_both_and_is_mit(dists: Dists) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert b"MIT License" in license_text and b"The pixery-widgets authors" in license_text
    assert dists.sdist_file("LICENSE") == license_text
    (in_wheel,) = [n for n in dists.wheel_names() if n.endswith(".dist-info/licenses/LICENSE")]
    assert dists.wheel_file(in_wheel) == license_text
    for meta in (dists.wheel_metadata(), dists.sdist_metadata()):
        assert meta["License-Expression"] == "MIT"
        assert meta.get_all("License-File") == ["LICENSE"]


def test_the_metadata_version_is_the_package_version(dists: Dists) -> None:
    version = pixery_widgets.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(\w+\d*)?", version), version
    assert dists.wheel_metadata()["Version"] == version
    assert dists.sdist_metadata()["Version"] == version
    assert dists.wheel.name.startswith(f"pixery_widgets-{version}-")
    assert dists.sdist.name == f"pixery_widgets-{version}.tar.gz"


def test_the_metadata_says_where_it_lives_and_what_it_runs_on(dists: Dists) -> None:
    meta = dists.wheel_metadata()
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Issues", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = meta.get_all("Classifier") or []
    unknown = [c for c in classifiers if c not in KNOWN_CLASSIFIERS]
    assert unknown == []
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX field says it
    assert {"Framework :: Jupyter", "Framework :: Jupyter :: JupyterLab"} <= set(classifiers)
    minors = sorted(
        int(c.rsplit(".", 1)[1])
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    )
    assert minors == [10, 11, 12, 13]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"


def test_the_loop_patch_is_the_maintained_fork(dists: Dists) -> None:
    requires = dists.wheel_metadata().get_all("Requires-Dist") or []
    names = {re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower() for r in requires}
    assert "nest-asyncio2" in names
    assert "nest-asyncio" not in names and "nest_asyncio" not in names


# -- docs/backends.md --------------------------------------------------------------------

#: ``docs/backends.md, "Gemini"`` or ``docs/backends.md ("The PNG text other tools read")``.
_POINTER = re.compile(r'docs/backends\.md(?:,\s*|\s*\(\s*)"([^"]+)"')


def _headings(markdown: str) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", markdown, re.M)}


def test_every_pointer_to_docs_backends_names_a_heading_there() -> None:
    headings = _headings(BACKENDS.read_text(encoding="utf-8"))
    pointers = [
        (path.relative_to(ROOT).as_posix(), match.group(1))
        for path in _project_files()
        if path.suffix in {".py", ".md", ".ipynb"}
        for match in _POINTER.finditer(path.read_text(encoding="utf-8"))
    ]
    named = {section for _, section in pointers}
    # The providers' modules point to these four: a pattern that found none is broken.
    assert {"The self-hosted server", "Gemini", "OpenAI", "fal.ai"} <= named, pointers
    dangling = [(where, section) for where, section in pointers if section not in headings]
    assert dangling == [], f"headings in docs/backends.md: {sorted(headings)}"


def test_nothing_in_the_project_points_to_the_design_notes_outside_it() -> None:
    files = _project_files()
    assert any(p.suffix == ".py" and PACKAGE in p.parents for p in files)
    mentions = [
        p.relative_to(ROOT).as_posix() for p in files if SPEC_FILE.encode() in p.read_bytes()
    ]
    assert mentions == []


# -- the demo and the simulator from an installed wheel ----------------------------------------


def test_the_wheel_carries_the_quick_start_notebook_as_in_the_repository(dists: Dists) -> None:
    shipped = dists.wheel_file("pixery_widgets/notebooks/01-quickstart.ipynb")
    assert shipped == (ROOT / "notebooks" / "01-quickstart.ipynb").read_bytes()


def test_the_demo_writes_the_quick_start_notebook_where_there_is_none(tmp_path: Path) -> None:
    from pixery_widgets import demo

    opened = demo.quickstart_notebook(tmp_path)
    written = tmp_path / opened
    assert written.read_bytes() == (ROOT / "notebooks" / "01-quickstart.ipynb").read_bytes()
    written.write_text("the user's own edits")
    demo.quickstart_notebook(tmp_path)  # never overwritten
    assert written.read_text() == "the user's own edits"


#: Runs a module as ``python -m`` would, with the sim extra's packages made unimportable.
_WITHOUT_EXTRA = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fastapi", "uvicorn", "starlette"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
runpy.run_module(sys.argv[1], run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module", ["pixery_widgets.sim", "pixery_widgets.demo"])
def test_without_the_sim_extra_the_simulator_says_what_to_install(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRA, module],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "pip install 'pixery-widgets[sim]'" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_without_the_sim_extra_the_package_itself_still_imports() -> None:
    code = _WITHOUT_EXTRA.replace(
        'runpy.run_module(sys.argv[1], run_name="__main__", alter_sys=True)',
        "import pixery_widgets as px, pixery_widgets.sim as sim; print(sim.MISSING_EXTRA)",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'pixery-widgets[sim]'" in result.stdout
