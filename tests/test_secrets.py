"""Secrets: API keys never leave for the self-hosted server, and a URL's password never shows.

The whole suite runs with sentinel keys in the environment and is swept for
them at the end (``_secrets_plugin``). These tests pin what the sweep alone
cannot: that the keys really are set, that the self-hosted server never gets a
key or a cloud auth header, that ``user:password@`` in SELFHOSTED_API_URL is
masked wherever the URL is shown, that a saved notebook holds neither, and that
the sweep itself finds a leak when there is one.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ipywidgets as w
import nbclient
import nbformat
import pytest
from _secrets_plugin import SENTINELS, file_leaks, leaks_in, sim_request_problems
from PIL import Image

import pixery_widgets as px
from pixery_widgets.core.config import load_settings
from pixery_widgets.core.errors import ConnectionFailedError
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers.selfhosted import SelfHostedClient
from pixery_widgets.providers.status import acheck_selfhosted
from pixery_widgets.widgets import PixeryPanel

PASSWORD = "s3cretpw-7d1e"
TESTS_DIR = Path(__file__).resolve().parent


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://pixuser:{PASSWORD}@", 1)


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


def assert_masked(text: str, what: str) -> None:
    assert PASSWORD not in text and "pixuser" not in text, f"the URL's credentials in {what}"
    assert not leaks_in(text), f"an API key in {what}"


def test_the_suite_runs_with_sentinel_keys_set():
    for name, value in SENTINELS.items():
        assert os.environ[name] == value
    settings = load_settings()
    assert settings.providers_with_keys == {"gemini", "openai", "fal"}
    assert_masked(repr(settings), "repr(settings)")
    assert "Secret('********')" in repr(settings)


def test_the_self_hosted_server_never_gets_a_key_or_a_cloud_auth_header(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)
    settings = load_settings()  # the keys come from the environment, as in real use
    assert set(settings.secrets()) == set(SENTINELS.values())

    async def everything():
        status = await acheck_selfhosted(settings)
        assert status.state is ServerState.HEALTHY
        client = SelfHostedClient(sim.url)
        await client.switch_model("pony")
        await client.loras()
        await px.agenerate(
            "a lighthouse",
            model="pony",
            seed=3,
            lora="detail_tweaker",
            reference=png(),
            settings=settings,
        )
        await px.arun_batch(["a", "b"], seeds=[1], settings=settings, progress=False)

    asyncio.run(everything())
    panel_generates_once(sim.url, tmp_path)

    log = list(sim.request_log)
    assert {r.path for r in log} >= {"/health", "/models", "/loras", "/switch-model", "/generate"}
    assert list(sim_request_problems(log)) == []
    for entry in log:
        assert not {"authorization", "x-goog-api-key", "x-api-key", "cookie"} & set(entry.headers)
        assert not leaks_in(json.dumps(entry.headers) + json.dumps(entry.json))


def panel_generates_once(url: str, tmp_path: Path) -> PixeryPanel:
    async def body():
        panel = PixeryPanel()  # settings from the environment, keys included
        await panel.refresh()
        panel.prompt.value = "from the panel"
        panel.generate_button.click()
        await panel.wait_idle()
        panel.close()
        return panel

    return asyncio.run(body())


def widget_state_text() -> str:
    """Every widget's state as a saved notebook would hold it."""
    return json.dumps(w.Widget.get_manager_state(drop_defaults=True), default=str)


def test_url_credentials_are_masked_in_status_errors_reprs_logs_and_the_panel(
    closed_port_url, sim, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    url = with_credentials(closed_port_url)
    settings = load_settings({"SELFHOSTED_API_URL": url})
    assert settings.selfhosted_url == url  # the real URL is kept for the requests...
    assert_masked(repr(settings), "repr(settings)")  # ...and shown masked
    assert settings.display_url == closed_port_url.replace("http://", "http://***@")

    status = asyncio.run(acheck_selfhosted(settings))
    assert status.state is ServerState.OFFLINE and status.reason == "connection refused"
    assert "***@" in status.summary()
    assert_masked(status.summary(), "the status summary")
    assert_masked(repr(status), "repr(status)")
    assert_masked(repr(SelfHostedClient(url)), "repr(client)")

    with pytest.raises(ConnectionFailedError) as info:
        asyncio.run(px.agenerate("a cat", settings=settings))
    assert "***@" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(info.value.args)):
        assert_masked(text, "the error")

    # The panel: the server answers the check, then goes away before the image.
    monkeypatch.setenv("SELFHOSTED_API_URL", with_credentials(sim.url))

    async def panel_body():
        panel = PixeryPanel()
        await panel.refresh()
        assert panel.model == "animagine", panel.menu  # local: no cloud request is ever made
        sim.stop()
        panel.prompt.value = "a cat"
        panel.generate_button.click()
        await panel.wait_idle()
        return panel

    panel = asyncio.run(panel_body())
    assert "Offline: connection refused" in panel.status_indicator.text.value
    assert "***@" in panel.status_indicator.text.value
    assert "***@" in (panel.image_output.error or "")
    assert_masked(panel.status_indicator.text.value, "the panel's status line")
    assert_masked(panel.image_output.caption.value, "the panel's error")
    assert_masked(repr(panel), "repr(panel)")
    assert_masked(widget_state_text(), "the widget state")
    panel.close()
    for record in caplog.records:
        assert_masked(record.getMessage(), f"a log record of {record.name}")


def test_credentials_reach_the_users_own_server_as_basic_auth_and_nowhere_in_logs(
    sim, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    settings = load_settings({"SELFHOSTED_API_URL": with_credentials(sim.url)})
    status = asyncio.run(acheck_selfhosted(settings))
    assert status.state is ServerState.HEALTHY
    g = asyncio.run(px.agenerate("a cat", settings=settings, archive=tmp_path / "out"))
    expected = "Basic " + base64.b64encode(f"pixuser:{PASSWORD}".encode()).decode()
    assert {r.headers.get("authorization") for r in sim.request_log} == {expected}
    assert list(sim_request_problems(sim.request_log)) == []  # the user's own credentials
    assert_masked(repr(status), "repr(status)")
    assert_masked(repr(g), "repr(generation)")
    assert_masked(json.dumps(g.params, default=str), "the generation's parameters")
    assert [r for r in caplog.records if r.name == "httpx"], "httpx logged no request"
    for record in caplog.records:
        assert_masked(record.getMessage(), f"a log record of {record.name}")
    files = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert g.path in files, files  # the image was archived, and is checked
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.timeout(180)
def test_a_saved_notebook_holds_no_key_and_no_url_password(sim, tmp_path):
    cells = [
        "import pixery_widgets as px\nsettings = px.load_settings()\nsettings",
        "panel = px.PixeryPanel()\nawait panel.refresh()\npanel",
        "panel.prompt.value = 'a saved notebook'\npanel.generate_button.click()\n"
        "await panel.wait_idle()\nassert panel.last_generation is not None, panel.image_output.error\n"
        "panel.last_generation",
        "batch = px.run_batch(['one', 'two'], seeds=[1], progress=False)\nbatch",
        "try:\n    px.generate('a cat', model='animagine', width=4000)\n"
        "except px.PixeryError as exc:\n    print(repr(exc))",
        "import os\nprint(sorted(k for k in os.environ if k.endswith('KEY')))\n"
        "px.acheck_selfhosted",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {
        **os.environ,
        "SELFHOSTED_API_URL": with_credentials(sim.url),
        "PIXERY_ARCHIVE_DIR": str(tmp_path / "archive"),
        "HOME": str(tmp_path),
    }
    client = nbclient.NotebookClient(
        nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    text = path.read_text()
    assert "widgets" in nb.metadata  # the widget state was saved, and is checked too
    assert "GEMINI_API_KEY" in text  # the keys were there to leak
    assert "a saved notebook" in text and "image/png" in text
    assert file_leaks(path) == []
    assert PASSWORD not in text and "pixuser" not in text
    assert "***@" in text  # the URL is shown, masked


# -- the sweep finds what it is there to find ----------------------------------------------------


def test_needles_find_a_key_raw_and_inside_base64_at_any_alignment():
    key = SENTINELS["FAL_KEY"]
    assert leaks_in(f"header: Key {key}") == [key]
    for prefix in range(6):
        encoded = base64.b64encode(b"x" * prefix + key.encode() + b"tail")
        assert leaks_in(encoded) == [key], prefix
    assert leaks_in("fal-SENTINEL-000000000000") == []


def test_the_sweep_fails_a_session_that_leaks_and_passes_a_clean_one(tmp_path):
    """A child pytest session with the plugin: a leak in a log, a file (base64) and a request to
    the self-hosted server each fail it; without them it passes. (The child draws its own
    sentinels, so nothing it writes can trip this session's sweep.)"""
    leaky = textwrap.dedent(
        """
        import base64, logging, os
        import httpx
        from pixery_widgets.sim import SimConfig, SimServer

        def test_logs_a_key():
            logging.getLogger("pixery_widgets.test").warning("key=%s", os.environ["FAL_KEY"])

        def test_writes_a_key_in_base64(tmp_path):
            (tmp_path / "notes.json").write_bytes(
                base64.b64encode(b"k=" + os.environ["OPENAI_API_KEY"].encode()))

        def test_sends_a_cloud_header_to_the_server():
            sim = SimServer(SimConfig(gen_seconds=0)).start()
            try:
                httpx.get(sim.url + "/health", headers={"x-goog-api-key": "nope"})
            finally:
                sim.stop()
        """
    )
    clean = textwrap.dedent(
        """
        import os

        def test_reads_the_keys_and_keeps_them():
            assert os.environ["GEMINI_API_KEY"].startswith("gm-SENTINEL-")
        """
    )

    def session(source: str, name: str) -> subprocess.CompletedProcess[str]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"test_{name}.py").write_text(source)
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "_secrets_plugin", "-p",
             "no:cacheprovider", f"--basetemp={folder / 'tmp'}", f"--rootdir={folder}",
             str(folder)],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(TESTS_DIR)},
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip

    bad = session(leaky, "leaky")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "3 passed" in bad.stdout  # the tests pass; the sweep fails the session
    report = bad.stdout[bad.stdout.index("API key sentinels leaked") :]
    assert "FAL_KEY's sentinel found in a log record" in report
    assert "OPENAI_API_KEY's sentinel found in the file" in report and "notes.json" in report
    assert "has a x-goog-api-key header" in report
    assert "SENTINEL-" not in report  # the report names the variable, never the value

    good = session(clean, "clean")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "sentinels leaked" not in good.stdout
