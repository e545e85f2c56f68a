"""Fixtures for browser tests: a real JupyterLab server + headless Chromium via Playwright.

Fixtures
--------
``jupyter_lab_factory``  (session) ``factory(env=None) -> JupyterLabServer``; one server per
                         distinct ``env`` (cached), all stopped at session end.
``jupyter_lab``          (session) the default server (no extra env).
``chromium_browser``     (session) Playwright ``Browser`` (Debian's /usr/bin/chromium).
``browser_context``      (function) fresh ``BrowserContext``, viewport 1400x1000.
``browser_page``         (function) a ``Page`` in that context.
``lab``                  (function) ``LabPage`` on ``jupyter_lab``; kernels shut down afterwards,
                         screenshot ``FAILED-<test>.png`` taken if the test failed.

Use another env: ``LabPage(browser_page, jupyter_lab_factory(env={"SELFHOSTED_API_URL": url}))``.

Chromium missing => the test fails (install with ``apt-get install -y chromium``), unless
``PIXERY_SKIP_BROWSER=1`` is set explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from ._lab import (
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    VIEWPORT,
    JupyterLabServer,
    LabPage,
    start_jupyter_lab,
)

BROWSER_DIR = Path(__file__).resolve().parent
SKIP_ENV = "PIXERY_SKIP_BROWSER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real JupyterLab in headless Chromium (tests/browser)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def _browser_unavailable_reason() -> str | None:
    if os.environ.get(SKIP_ENV) == "1":
        return None
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        return (
            f"Chromium not found at {CHROMIUM_PATH}: browser tests need it. "
            "Install with `apt-get install -y chromium` "
            f"(or set {SKIP_ENV}=1 to skip browser tests explicitly)."
        )
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Decide before any fixture starts a Jupyter server.
    if item.get_closest_marker("browser") is None:
        return
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: browser tests skipped explicitly")
    reason = _browser_unavailable_reason()
    if reason:
        pytest.fail(reason, pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"_pixery_rep_{report.when}", report)
    return report


# --------------------------------------------------------------------------- #
# JupyterLab server
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def jupyter_lab_factory() -> Iterator[Callable[..., JupyterLabServer]]:
    servers: dict[tuple[tuple[str, str | None], ...], JupyterLabServer] = {}

    def factory(env: Mapping[str, str | None] | None = None) -> JupyterLabServer:
        key = tuple(sorted((env or {}).items()))
        server = servers.get(key)
        if server is None or not server.is_alive():
            server = servers[key] = start_jupyter_lab(env)
        return server

    yield factory
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def jupyter_lab(jupyter_lab_factory: Callable[..., JupyterLabServer]) -> JupyterLabServer:
    return jupyter_lab_factory()


# --------------------------------------------------------------------------- #
# Browser
# --------------------------------------------------------------------------- #


# Package scope: Playwright's sync API keeps an event loop marked as running while it
# lives, which would break asyncio.run() in every test collected after this package.
@pytest.fixture(scope="package")
def chromium_browser():
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: browser tests skipped explicitly")
    reason = _browser_unavailable_reason()
    if reason:
        pytest.fail(reason, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_context(chromium_browser):
    context = chromium_browser.new_context(viewport=VIEWPORT)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def browser_page(browser_context):
    page = browser_context.new_page()
    page.set_default_timeout(30_000)
    return page


@pytest.fixture
def lab(
    request: pytest.FixtureRequest, browser_page, jupyter_lab: JupyterLabServer
) -> Iterator[LabPage]:
    lab_page = LabPage(browser_page, jupyter_lab)
    yield lab_page
    rep = getattr(request.node, "_pixery_rep_call", None)
    if rep is not None and rep.failed:
        lab_page._try_screenshot(f"FAILED-{request.node.name}")
    jupyter_lab.shutdown_all_kernels()
