"""The whole test suite runs with sentinel API keys set; the session fails if one shows up.

Registered from ``tests/conftest.py`` (``pytest_plugins = ["_secrets_plugin"]``).
Sentinels (random per session) are put in ``GEMINI_API_KEY``, ``OPENAI_API_KEY``
and ``FAL_KEY`` before anything runs, so every settings object read from the
environment, every kernel a test starts and every subprocess holds them. Then
it watches everywhere a key could leak to and fails the session on any find:

* every log record emitted (pixery's own at DEBUG, httpx's request lines at INFO);
* every test's captured stdout, stderr and log output;
* every request any simulator received (no key, no cloud auth header; a Basic
  header is allowed: that is a ``user:pass@`` the user wrote in the URL);
* at the end, every file written during the session under pytest's temporary
  directory (the archives tests wrote, saved notebooks) and the repository's
  ``pixery-out``, ``test-artifacts`` and ``notebooks``, raw and base64-encoded.

Browser tests are the exception: they assert what a user *without* keys sees,
so the sentinels are taken out of the environment while they run (their
JupyterLab server inherits the environment of the test that starts it).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

TOKEN = secrets.token_hex(6)
#: Environment variable → the sentinel key this session puts in it.
SENTINELS: dict[str, str] = {
    "GEMINI_API_KEY": f"gm-SENTINEL-{TOKEN}",
    "OPENAI_API_KEY": f"sk-SENTINEL-{TOKEN}",
    "FAL_KEY": f"fal-SENTINEL-{TOKEN}",
}
#: Header names that carry a cloud key; a self-hosted server must never receive one.
CLOUD_AUTH_HEADERS = ("x-goog-api-key", "x-api-key", "api-key")
#: Repository folders swept at the end besides pytest's temporary directory.
REPO_DIRS = ("pixery-out", "test-artifacts", "notebooks")
_BROWSER_DIR = Path(__file__).parent / "browser"
_MAX_WHOLE_READ = 64 * 1024 * 1024


def _encodings(value: str) -> list[bytes]:
    """The sentinel as it would appear raw, or inside base64 at any of the 3 alignments."""
    raw = value.encode()
    found = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = (shift * 4 + 2) // 3 + 1  # past the characters that mix in the padding bytes
        found.append(encoded[start : len(encoded) - 4])
    return [f for f in found if len(f) >= 12]


_NEEDLES = {value: _encodings(value) for value in SENTINELS.values()}


def leaks_in(text: str | bytes) -> list[str]:
    """The sentinels found in ``text`` (raw or base64-encoded)."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return [value for value, needles in _NEEDLES.items() if any(n in data for n in needles)]


def hide(text: str) -> str:
    """``text`` with each sentinel replaced by its variable's name, for the report."""
    for name, value in SENTINELS.items():
        text = text.replace(value, f"<{name}>")
    return text


class _State:
    def __init__(self) -> None:
        self.findings: list[str] = []
        self.started = time.time()
        self.saved_env: dict[str, str | None] = {}
        self.saved_levels: dict[str, int] = {}
        self.handler: _LeakHandler | None = None
        self.servers: list[Any] = []
        self.original_start: Any = None

    def found(self, where: str, leaked: Iterable[str]) -> None:
        for value in leaked:
            name = next(k for k, v in SENTINELS.items() if v == value)
            self.findings.append(f"{name}'s sentinel found in {where}")


STATE = _State()


class _LeakHandler(logging.Handler):
    """Looks at every record as it is emitted; keeps only the offending ones."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken record is not ours to judge
            text = str(record.msg)
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        leaked = leaks_in(text)
        if leaked:
            STATE.found(f"a log record of {record.name!r}: {hide(text)[:200]!r}", leaked)


def _set_env(keys: bool) -> None:
    for name, value in SENTINELS.items():
        if keys:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def pytest_configure(config: pytest.Config) -> None:
    STATE.saved_env = {name: os.environ.get(name) for name in SENTINELS}
    _set_env(True)
    STATE.handler = _LeakHandler(level=logging.DEBUG)
    logging.getLogger().addHandler(STATE.handler)
    for name, level in (("pixery_widgets", logging.DEBUG), ("httpx", logging.INFO)):
        logger = logging.getLogger(name)
        STATE.saved_levels[name] = logger.level
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
    _watch_simulators()


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in STATE.saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if STATE.handler is not None:
        logging.getLogger().removeHandler(STATE.handler)
    for name, level in STATE.saved_levels.items():
        logging.getLogger(name).setLevel(level)
    if STATE.original_start is not None:
        from pixery_widgets.sim import _server

        _server.SimServer.start = STATE.original_start


# -- per test ----------------------------------------------------------------------------


def _watch_simulators() -> None:
    """Remember every simulator a test starts, to read its request log after the test."""
    try:
        from pixery_widgets.sim import _server
    except ImportError:  # the [sim] extra is not installed: no simulator to watch
        return

    original = STATE.original_start = _server.SimServer.start

    def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self not in STATE.servers:
            STATE.servers.append(self)
        return original(self, *args, **kwargs)

    _server.SimServer.start = start  # type: ignore[method-assign]


def sim_request_problems(request_log: Iterable[Any]) -> Iterator[str]:
    """Every way the requests a self-hosted server received carry a cloud credential."""
    for entry in request_log:
        where = f"a request to the self-hosted server ({entry.method} {entry.path})"
        for name, value in entry.headers.items():
            if name in CLOUD_AUTH_HEADERS:
                yield f"{where} has a {name} header"
            if name == "authorization" and not value.startswith("Basic "):
                yield f"{where} has an Authorization header that is not the URL's own Basic auth"
        text = json.dumps(entry.headers) + json.dumps(entry.json, default=str)
        for value in leaks_in(text):
            yield f"{where} carries {value}"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture: a JupyterLab server started for a browser test must not inherit keys.
    _set_env(_BROWSER_DIR not in Path(str(item.path)).parents)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    for server in STATE.servers:
        for problem in sim_request_problems(list(server.request_log)):
            STATE.findings.append(f"{item.nodeid}: {problem}")
    STATE.servers.clear()
    _set_env(True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:
        STATE.found(f"{report.nodeid}: {name}", leaks_in(content))


# -- at the end: the files ---------------------------------------------------------------


def _written_files(roots: Iterable[Path], since: float) -> Iterator[Path]:
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
                    yield path
            except OSError:
                continue


def file_leaks(path: Path) -> list[str]:
    """The sentinels in ``path``, read whole or (if big) in overlapping pieces."""
    try:
        if path.stat().st_size <= _MAX_WHOLE_READ:
            return leaks_in(path.read_bytes())
        found: set[str] = set()
        with path.open("rb") as handle:
            tail = b""
            while chunk := handle.read(8 * 1024 * 1024):
                found.update(leaks_in(tail + chunk))
                tail = chunk[-256:]
        return sorted(found)
    except OSError:
        return []


def sweep_files(roots: Iterable[Path], since: float = 0.0) -> list[str]:
    findings = []
    for path in _written_files(roots, since):
        for value in file_leaks(path):
            name = next(k for k, v in SENTINELS.items() if v == value)
            findings.append(f"{name}'s sentinel found in the file {path}")
    return findings


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    roots = [Path(str(session.config.rootpath)) / d for d in REPO_DIRS]
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is not None:
        roots.append(Path(basetemp))
    findings = [*STATE.findings, *sweep_files(roots, since=STATE.started - 1)]
    if not findings:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "API key sentinels leaked", red=True, bold=True)
        for finding in dict.fromkeys(findings):
            reporter.write_line(finding)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
