"""Helpers for driving a real JupyterLab in headless Chromium.

Two pieces:

* :class:`JupyterLabServer` / :func:`start_jupyter_lab` -- a ``python -m jupyter lab``
  subprocess on a free loopback port with isolated Jupyter config/data/runtime dirs
  (the venv's ``share/jupyter`` stays on the data path so the ipywidgets and
  anywidget labextensions load), no news/update popups and ``window.jupyterapp``
  exposed so tests can run JupyterLab commands directly.
* :class:`LabPage` -- wraps a Playwright ``Page``: open a notebook, get past the
  kernel dialog, run all cells, wait for completion, find outputs, click widget
  buttons, collect tracebacks and take screenshots.

Every wait is bounded; on timeout an ``AssertionError`` is raised whose message
contains a screenshot path plus recent browser console errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-artifacts" / "screenshots"
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"

CHROMIUM_PATH = os.environ.get("PIXERY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}

# Timeouts (seconds)
SERVER_START_TIMEOUT = 60.0
LAB_LOAD_TIMEOUT = 60.0
KERNEL_IDLE_TIMEOUT = 60.0
RUN_ALL_TIMEOUT = 120.0
OUTPUT_TIMEOUT = 30.0

# Settings overrides: suppress the "get notified about official Jupyter news?"
# toast and update checks, and attach every cell to the DOM so locators can
# find outputs that are scrolled out of view.
LAB_SETTINGS_OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension:tracker": {
        "windowingMode": "none",
    },
}


# --------------------------------------------------------------------------- #
# Server
# --------------------------------------------------------------------------- #


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendant_pids(pid: int) -> list[int]:
    """All descendants of ``pid`` (Linux /proc walk; psutil if available)."""
    try:
        import psutil

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    except ImportError:  # pragma: no cover - psutil ships with ipykernel
        pass
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _kill(pids: list[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


class JupyterLabServer:
    """A running ``jupyter lab`` subprocess. Create with :func:`start_jupyter_lab`."""

    def __init__(
        self,
        *,
        proc: subprocess.Popen,
        port: int,
        token: str,
        root_dir: Path,
        home: Path,
        log_path: Path,
        env: dict[str, str],
    ) -> None:
        self.proc = proc
        self.port = port
        self.token = token
        self.root_dir = root_dir
        self.home = home  # temp dir holding config/data/runtime/settings (and root_dir)
        self.log_path = log_path
        self.env = env
        self.base_url = f"http://127.0.0.1:{port}"

    # -- URLs / REST ------------------------------------------------------- #

    def url(self, path: str = "", **query: str) -> str:
        q = {"token": self.token, **query}
        return f"{self.base_url}/{path.lstrip('/')}?{urllib.parse.urlencode(q)}"

    def notebook_url(self, name: str) -> str:
        return self.url(f"lab/tree/{urllib.parse.quote(name)}")

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    # -- notebooks --------------------------------------------------------- #

    def copy_notebook(self, src: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy ``src`` into root_dir (a bare name is looked up in tests/browser/fixtures).

        Returns the path relative to root_dir, for :meth:`LabPage.open_notebook`.
        """
        src_path = Path(src)
        if not src_path.is_absolute() and not src_path.exists():
            src_path = FIXTURES_DIR / src_path
        if not src_path.exists():
            raise FileNotFoundError(src_path)
        rel = name or src_path.name
        dest = self.root_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_path, dest)
        return rel

    def shutdown_all_kernels(self) -> None:
        try:
            for sess in self.api("GET", "sessions"):
                self.api("DELETE", f"sessions/{sess['id']}")
            for kernel in self.api("GET", "kernels"):
                self.api("DELETE", f"kernels/{kernel['id']}")
        except (OSError, urllib.error.URLError, ValueError):
            pass

    # -- lifecycle --------------------------------------------------------- #

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and every process it spawned (kernels run in their own sessions)."""
        if self.proc.poll() is None:
            pids = _descendant_pids(self.proc.pid)
            self.shutdown_all_kernels()
            self.proc.send_signal(signal.SIGTERM)  # jupyter_server shuts kernels down on SIGTERM
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
            pids += _descendant_pids(self.proc.pid) if self.proc.poll() is None else []
            _kill([self.proc.pid, *pids], signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            _kill(pids, signal.SIGKILL)  # stragglers (kernels are in their own process groups)
        shutil.rmtree(self.home, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<JupyterLabServer {self.base_url} root_dir={self.root_dir}>"


def start_jupyter_lab(
    env: Mapping[str, str | None] | None = None,
    *,
    timeout: float = SERVER_START_TIMEOUT,
    attempts: int = 3,
) -> JupyterLabServer:
    """Start ``sys.executable -m jupyter lab`` and wait until ``/api/status`` answers.

    ``env`` is merged over ``os.environ`` (a ``None`` value removes a variable);
    kernels inherit it, so e.g. ``{"SELFHOSTED_API_URL": ...}`` reaches notebook code.
    """
    last_error = ""
    for _ in range(attempts):
        server = _launch(env)
        err = _wait_ready(server, timeout)
        if err is None:
            return server
        last_error = f"{err}\n--- jupyter lab log (tail) ---\n{server.log_tail()}"
        server.stop()
        if "address already in use" not in last_error.lower():
            break
    raise RuntimeError(f"jupyter lab did not start: {last_error}")


def _launch(env: Mapping[str, str | None] | None) -> JupyterLabServer:
    home = Path(tempfile.mkdtemp(prefix="pixery-lab-"))
    root_dir = home / "notebooks"
    dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "workspaces")}
    user_settings = home / "user-settings"
    app_settings = home / "app-settings"
    for d in [root_dir, user_settings, app_settings, *dirs.values()]:
        d.mkdir(parents=True)
    (app_settings / "overrides.json").write_text(json.dumps(LAB_SETTINGS_OVERRIDES, indent=2))
    # Belt and braces: also store the choice as a user setting.
    notif = (
        user_settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notif.parent.mkdir(parents=True)
    notif.write_text(
        json.dumps(LAB_SETTINGS_OVERRIDES["@jupyterlab/apputils-extension:notification"])
    )

    # news_url=None turns the news feed off server-side (page_config news.disabled);
    # None can't be expressed on the command line, hence a config file.
    (dirs["config"] / "jupyter_server_config.json").write_text(
        json.dumps({"LabApp": {"news_url": None}})
    )

    token = secrets.token_hex(24)
    port = free_port()

    full_env = dict(os.environ)
    full_env.update(
        {
            # Isolated user-level dirs. The venv (sys.prefix) data/config paths stay on
            # jupyter's search path, so labextensions + server extensions still load.
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(user_settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for var in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN", "JUPYTER_PREFER_ENV_PATH"):
        full_env.pop(var, None)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = str(value)

    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.shutdown_no_activity_timeout=0",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={user_settings}",
        f"--LabApp.app_settings_dir={app_settings}",
        f"--LabApp.workspaces_dir={dirs['workspaces']}",
    ]
    log_path = home / "jupyter-lab.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=root_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    return JupyterLabServer(
        proc=proc,
        port=port,
        token=token,
        root_dir=root_dir,
        home=home,
        log_path=log_path,
        env=full_env,
    )


def _wait_ready(server: JupyterLabServer, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server.is_alive():
            return f"process exited with code {server.proc.returncode}"
        try:
            status = server.api("GET", "status", timeout=2)
            if isinstance(status, dict) and "started" in status:
                return None
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = repr(exc)
        time.sleep(0.25)
    return f"/api/status did not answer within {timeout:.0f}s (last error: {last})"


# --------------------------------------------------------------------------- #
# Browser page
# --------------------------------------------------------------------------- #

_JS_NOTEBOOK_STATE = """
() => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return { ready: false, why: 'no window.jupyterapp' };
  const w = app.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext || !w.context) return { ready: false, why: 'no notebook panel' };
  const sc = w.sessionContext;
  const kernel = sc.session && sc.session.kernel;
  return {
    ready: true,
    path: w.context.path,
    sessionReady: !!sc.isReady,
    hasNoKernel: !!sc.hasNoKernel,
    kernelStatus: kernel ? kernel.status : null,
    kernelName: kernel ? kernel.name : null,
    connectionStatus: kernel ? kernel.connectionStatus : null,
  };
}
"""

_JS_NOTEBOOK_JSON = """
() => {
  const w = window.jupyterapp.shell.currentWidget;
  return w.context.model.toJSON();
}
"""


class LabError(AssertionError):
    """A :class:`LabPage` wait ran out or the notebook had errors (message has a screenshot path)."""


#: JS for ``LabPage.colour_and_theme``: a computed colour and a probe of the theme variable.
_COLOUR_AND_THEME = """([selector, prop, variable]) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const probe = document.createElement('div');
  probe.style.color = `var(${variable})`;
  document.body.appendChild(probe);
  const want = getComputedStyle(probe).color;
  probe.remove();
  return [getComputedStyle(el)[prop.replace(/-([a-z])/g, (_, c) => c.toUpperCase())], want];
}"""


class LabPage:
    """A Playwright ``Page`` showing JupyterLab on ``server``.

    Typical use::

        lab.open_notebook(server.copy_notebook("harness.ipynb"))
        lab.run_all()
        lab.assert_no_errors()
        lab.click_button("Press me")
        lab.wait_for_output_text("pressed")
        lab.screenshot("after-click")
    """

    def __init__(self, page: Page, server: JupyterLabServer) -> None:
        self.page = page
        self.server = server
        self.notebook_path: str | None = None
        self.console: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console.append(f"[pageerror] {exc}"))

    def _on_console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.console.append(f"[{msg.type}] {msg.text}")

    # -- failure reporting ------------------------------------------------- #

    def _fail(self, message: str, shot: str = "timeout") -> LabError:
        stem = Path(self.notebook_path or "lab").stem
        path = self._try_screenshot(f"FAIL-{stem}-{shot}")
        details = [message, f"screenshot: {path}"]
        errors = [c for c in self.console if not c.startswith("[warning]")][-10:]
        if errors:
            details.append("recent browser console errors:\n  " + "\n  ".join(errors))
        if not self.server.is_alive():
            details.append("jupyter lab server died; log tail:\n" + self.server.log_tail())
        return LabError("\n".join(details))

    def _try_screenshot(self, name: str) -> str:
        try:
            return str(self.screenshot(name))
        except Exception as exc:
            return f"<screenshot failed: {exc}>"

    def _poll(
        self, predicate: Any, timeout: float, message: Any, shot: str, interval: float = 0.2
    ) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = predicate()
            if last:
                return last
            if time.monotonic() > deadline:
                msg = message() if callable(message) else message
                raise self._fail(f"{msg} (after {timeout:.0f}s)", shot)
            self.page.wait_for_timeout(interval * 1000)

    # -- state ------------------------------------------------------------- #

    def state(self) -> dict[str, Any]:
        try:
            return self.page.evaluate(_JS_NOTEBOOK_STATE)
        except Exception as exc:
            return {"ready": False, "why": repr(exc)}

    def notebook_json(self) -> dict[str, Any]:
        """The current notebook (nbformat dict) straight from JupyterLab's model, with outputs."""
        return self.page.evaluate(_JS_NOTEBOOK_JSON)

    @property
    def notebook(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")

    @property
    def outputs(self) -> Locator:
        return self.notebook.locator(".jp-OutputArea-output")

    # -- opening / kernel -------------------------------------------------- #

    def open_notebook(self, name: str, timeout: float = LAB_LOAD_TIMEOUT) -> None:
        """Navigate to ``lab/tree/<name>``, handle the kernel dialog, wait for an idle kernel."""
        self.notebook_path = name
        self.page.goto(
            self.server.notebook_url(name), wait_until="domcontentloaded", timeout=timeout * 1000
        )

        def loaded() -> bool:
            self.dismiss_dialogs()
            st = self.state()
            if st.get("ready") and st.get("path") != name:
                # Shown, but the layout the shared Lab restored kept another tab current
                # (commands such as Run All act on the current one): make it current.
                self.execute_command("docmanager:open", {"path": name})
            return bool(st.get("ready") and st.get("path") == name)

        self._poll(
            loaded,
            timeout,
            lambda: f"JupyterLab did not open {name!r}: {self.state()}",
            "open-notebook",
        )
        self.notebook.wait_for(state="visible", timeout=timeout * 1000)
        self.wait_for_kernel_idle()

    def dismiss_dialogs(self) -> bool:
        """Accept any modal dialog (e.g. "Select Kernel" -> "Select"). Returns True if one was handled."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count() == 0:
            return False
        accept = dialog.locator(".jp-Dialog-footer button.jp-mod-accept")
        with contextlib.suppress(Exception):  # the dialog may close on its own
            if accept.count():
                accept.first.click(timeout=5000)
            else:
                self.page.keyboard.press("Enter")
        return True

    def wait_for_kernel_idle(self, timeout: float = KERNEL_IDLE_TIMEOUT) -> None:
        def idle() -> bool:
            self.dismiss_dialogs()
            st = self.state()
            return bool(
                st.get("ready")
                and st.get("sessionReady")
                and st.get("kernelStatus") == "idle"
                and st.get("connectionStatus") == "connected"
            )

        self._poll(
            idle, timeout, lambda: f"kernel did not become idle: {self.state()}", "kernel-idle"
        )

    # -- running ----------------------------------------------------------- #

    def execute_command(self, command: str, args: dict[str, Any] | None = None) -> None:
        """Fire a JupyterLab command (``app.commands.execute``) without awaiting it."""
        self.page.evaluate(
            "([cmd, args]) => { window.jupyterapp.commands.execute(cmd, args); }",
            [command, args or {}],
        )

    @contextlib.contextmanager
    def dark_theme(self) -> Iterator[None]:
        """JupyterLab Dark for the block, then Light again (the theme is a setting of the
        shared JupyterLab, so it is put back even when the block fails)."""
        self.execute_command("apputils:change-theme", {"theme": "JupyterLab Dark"})
        try:
            self.page.wait_for_function(
                "() => document.body.dataset.jpThemeLight === 'false'", timeout=15000
            )
            self.page.wait_for_timeout(500)
            yield
        finally:
            self.execute_command("apputils:change-theme", {"theme": "JupyterLab Light"})
            with contextlib.suppress(Exception):  # back before the next test opens a notebook
                self.page.wait_for_function(
                    "() => document.body.dataset.jpThemeLight === 'true'", timeout=15000
                )

    def colour_and_theme(self, selector: str, prop: str, variable: str) -> tuple[str, str] | None:
        """(the first ``selector`` match's computed ``prop``, the colour the theme's
        ``variable`` resolves to), both as the browser writes them; ``None`` if no match."""
        pair = self.page.evaluate(_COLOUR_AND_THEME, [selector, prop, variable])
        return tuple(pair) if pair is not None else None  # type: ignore[return-value]

    def theme_colours(
        self, checks: Sequence[tuple[str, str, str, str]]
    ) -> dict[str, tuple[str, str]]:
        """``colour_and_theme`` for each (what, selector, property, variable), by ``what``;
        a selector that matches nothing fails the test."""
        found: dict[str, tuple[str, str]] = {}
        for what, selector, prop, variable in checks:
            pair = self.colour_and_theme(selector, prop, variable)
            assert pair is not None, f"{what}: nothing matches {selector}"
            found[what] = pair
        return found

    def run_all(
        self, timeout: float = RUN_ALL_TIMEOUT, check_errors: bool = True, via_menu: bool = False
    ) -> None:
        """Run all cells and wait until every code cell has executed and the kernel is idle.

        Uses the ``notebook:run-all-cells`` command through ``window.jupyterapp``; falls back
        to the menu bar (Run -> Run All Cells) if the app isn't exposed or ``via_menu``.
        With ``check_errors`` (default) fail with the tracebacks of any error output.
        """
        self.wait_for_kernel_idle()
        has_app = self.page.evaluate("() => !!(window.jupyterapp && window.jupyterapp.commands)")
        if has_app and not via_menu:
            self.execute_command("notebook:run-all-cells")
        else:  # fallback: the menu bar
            self.page.get_by_role("menuitem", name="Run", exact=True).click()
            self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        self.wait_for_execution(timeout)
        if check_errors:
            self.assert_no_errors()

    def _execution_done(self) -> bool:
        st = self.state()
        if st.get("kernelStatus") != "idle":
            return False
        nb = self.notebook_json()
        for cell in nb.get("cells", []):
            unexecuted = cell.get("execution_count") is None
            if (
                cell.get("cell_type") == "code"
                and "".join(cell.get("source", "")).strip()
                and unexecuted
            ):
                # An error stops run-all; later cells stay unexecuted.
                return bool(self.error_outputs())
        prompts = self.notebook.locator(".jp-InputPrompt").all_inner_texts()
        return not any("*" in p for p in prompts)

    def wait_for_execution(self, timeout: float = RUN_ALL_TIMEOUT) -> None:
        """Wait until no cell shows ``[*]``, all code cells have an execution count and the kernel is idle."""

        def pending() -> str:
            prompts = self.notebook.locator(".jp-InputPrompt").all_inner_texts()
            return f"cells still executing; prompts={prompts} state={self.state()}"

        # Two consecutive "done" observations guard against the gap between cells.
        streak = {"n": 0}

        def done() -> bool:
            streak["n"] = streak["n"] + 1 if self._execution_done() else 0
            return streak["n"] >= 2

        self._poll(done, timeout, pending, "run-all", interval=0.25)

    # -- outputs ----------------------------------------------------------- #

    def error_outputs(self) -> list[str]:
        """Tracebacks of error outputs, from the notebook model (ANSI codes stripped)."""
        errors = []
        for i, cell in enumerate(self.notebook_json().get("cells", [])):
            for out in cell.get("outputs", []) or []:
                if out.get("output_type") == "error":
                    tb = "\n".join(
                        out.get("traceback") or [f"{out.get('ename')}: {out.get('evalue')}"]
                    )
                    errors.append(f"cell {i}: " + re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", tb))
        return errors

    def assert_no_errors(self) -> None:
        errors = self.error_outputs()
        if errors:
            raise self._fail("notebook produced error outputs:\n" + "\n\n".join(errors), "errors")

    def wait_visible(
        self, locator: Locator, what: str = "", timeout: float = OUTPUT_TIMEOUT
    ) -> Locator:
        """Wait for ``locator`` to be visible; on timeout fail with a screenshot + output texts."""
        try:
            locator.wait_for(state="visible", timeout=timeout * 1000)
        except Exception as exc:
            raise self._fail(
                f"{what or locator} not visible; outputs={self.output_texts()!r}; {exc}",
                "wait-visible",
            ) from None
        return locator

    def wait_for_button(
        self, text: str | re.Pattern[str], exact: bool = True, timeout: float = OUTPUT_TIMEOUT
    ) -> Locator:
        """Wait until a button with this text shows up in an output area; returns its locator."""
        return self.wait_visible(self.button(text, exact).first, f"button {text!r}", timeout)

    def output_texts(self) -> list[str]:
        return self.outputs.all_inner_texts()

    def find_output(self, text: str | re.Pattern[str], timeout: float = OUTPUT_TIMEOUT) -> Locator:
        """The first output area whose text contains ``text`` (visible)."""
        return self.wait_visible(
            self.outputs.filter(has_text=text).first, f"output containing {text!r}", timeout
        )

    def wait_for_output_text(
        self, text: str | re.Pattern[str], timeout: float = OUTPUT_TIMEOUT
    ) -> Locator:
        return self.find_output(text, timeout)

    def button(self, text: str | re.Pattern[str], exact: bool = True) -> Locator:
        """A ``<button>`` inside an output area, matched by its accessible name / text."""
        if isinstance(text, re.Pattern):
            return self.outputs.get_by_role("button", name=text)
        return self.outputs.get_by_role("button", name=text, exact=exact)

    def click_button(
        self, text: str | re.Pattern[str], exact: bool = True, timeout: float = OUTPUT_TIMEOUT
    ) -> None:
        loc = self.button(text, exact)
        try:
            loc.first.wait_for(state="visible", timeout=timeout * 1000)
            n = loc.count()
            if n > 1:
                raise self._fail(f"{n} buttons match {text!r}; be more specific", "click-ambiguous")
            loc.scroll_into_view_if_needed(timeout=timeout * 1000)
            loc.click(timeout=timeout * 1000)
        except LabError:
            raise
        except Exception as exc:
            raise self._fail(
                f"could not click button {text!r}; outputs={self.output_texts()!r}; {exc}", "click"
            ) from None

    # -- screenshots ------------------------------------------------------- #

    def screenshot(self, name: str, *, panel: bool = False, target: Locator | None = None) -> Path:
        """Save ``test-artifacts/screenshots/<name>.png``.

        Whole page by default; ``panel=True`` -> just the notebook panel; ``target`` -> that
        element only (scrolled into view first). JupyterLab scrolls inside the notebook
        panel, so a "full page" shot is the viewport: scroll ``target`` into view to show it.
        """
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        path = SCREENSHOT_DIR / f"{safe}.png"
        if target is not None:
            target.scroll_into_view_if_needed()
            target.screenshot(path=str(path))
        elif panel:
            self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        return path
