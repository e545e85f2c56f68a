"""The fault matrix at the panel: the failure is shown in words where the image would be,
the images already shown stay, and the next generation works once the fault is gone.

A representative subset of the client-level matrix (test_faults_client.py): a
server that went away, one that hangs, a proxy's HTML 500, a broken image and a
model that is not downloaded. The panel is driven as a user would: its widgets'
values and buttons, on a real event loop, against the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from env_helpers import Env
from panel_helpers import ready, until
from test_no_loss import assert_archive_consistent

from pixery_widgets.core.config import Settings
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers import selfhosted
from pixery_widgets.widgets import PixeryPanel


@pytest.fixture(autouse=True)
def _short_generate_timeout(monkeypatch):
    monkeypatch.setattr(selfhosted, "GENERATE_TIMEOUT", httpx.Timeout(1.5, connect=1.0))


def env_for(url: str, tmp_path: Path) -> Callable[[], Settings]:
    """What a panel reads: only these values, and the archive inside the test's directory."""
    return Env(tmp_path, SELFHOSTED_API_URL=url, PIXERY_ARCHIVE_DIR=str(tmp_path / "archive")).load


async def generate(panel: PixeryPanel, prompt: str) -> None:
    """Type a prompt and press Generate, then wait for everything it started."""
    panel.prompt.value = prompt
    panel.generate_button.click()
    await panel.wait_idle()


def break_server(sim, kind: str) -> Callable[[], None]:
    """Arm the fault for the next generation; returns how to mend it."""
    if kind == "refused":
        sim.stop()  # the rented box went away
        return sim.start
    sim.set_fault("/generate", kind, times=1)
    return lambda: sim.clear_faults()


#: fault → words the panel must show where the image would be ("a|b": either)
PANEL_FAULTS = {
    # A new connection is refused; one kept alive from the last image finds the box gone
    # (closed, or reset as the request arrives). Which a request meets is a race; each
    # says what happened, and the re-check after it says "connection refused".
    "refused": "refused the connection; is the server running?"
    "|closed the connection without answering; it may have stopped or restarted"
    "|dropped the connection before its answer was complete",
    "hang": "did not answer within 1.5 s",
    "html_500": "failed with an internal error: HTTP 500 with an HTML page",
    "invalid_base64": "The image in your server's answer is not valid base64",
    "status_503": "Model 'animagine' is not downloaded on this server",
}


@pytest.mark.parametrize("kind", list(PANEL_FAULTS))
def test_a_fault_is_shown_in_words_and_the_panel_stays_usable(kind, sim, tmp_path):
    words = PANEL_FAULTS[kind]

    async def body():
        panel = PixeryPanel(load=env_for(sim.url, tmp_path))
        await until(lambda: ready(panel), what="the first check")
        await generate(panel, "before the fault")
        before = panel.last_generation
        mend = break_server(sim, kind)
        await generate(panel, "during the fault")
        during = {
            "error": panel.image_output.error,
            "caption": panel.image_output.caption.value,
            "image_display": panel.image_output.image.layout.display,
            "button": (panel.generate_button.description, panel.generate_button.disabled),
            "task": panel.generate_task,
            "strip": len(panel.image_output.strip.items),
            "status": panel.status_indicator.text.value,
            "state": panel.server_status.state,
        }
        mend()
        if kind == "refused":
            await panel.refresh()  # as the Refresh button does once the box is back
            await until(lambda: ready(panel), what="the server to be back")
        await generate(panel, "after the fault")
        panel.close()
        return panel, before, during

    panel, before, during = asyncio.run(body())

    # The failure, in words, where the image would be.
    said = [w for w in words.split("|") if w in (during["error"] or "")]
    assert said, during["error"]
    assert "could not be made" in during["caption"]
    assert said[0].replace("'", "&#x27;") in during["caption"]
    assert during["image_display"] == "none"
    # Still usable: the button is back to Generate, nothing is left running.
    assert during["button"] == ("Generate", False) and during["task"] is None
    assert during["strip"] == 1  # the image made before the fault is still in the strip
    if kind == "refused":  # the panel re-checked after the failure: offline, and why
        assert during["state"] is ServerState.OFFLINE
        assert "Offline: connection refused" in during["status"]
    else:
        assert during["state"] is ServerState.HEALTHY

    # The next generation works and shows; nothing received was lost.
    out = panel.image_output
    assert out.error is None and out.current is panel.last_generation
    assert panel.last_generation.prompt == "after the fault"
    assert out.strip.items[0]["title"] == before.caption()
    assert len(out.strip.items) == 2
    archived = assert_archive_consistent(tmp_path / "archive")
    assert archived == {before.id, panel.last_generation.id}


def test_a_hang_shows_busy_while_waiting_and_cancel_still_works(sim, tmp_path, monkeypatch):
    """While a request hangs the panel says busy (not offline) and Cancel ends it at once."""
    monkeypatch.setattr(selfhosted, "GENERATE_TIMEOUT", httpx.Timeout(60.0, connect=1.0))

    async def body():
        panel = PixeryPanel(load=env_for(sim.url, tmp_path))
        await until(lambda: ready(panel))
        sim.set_fault("/generate", "hang", times=1)
        panel.prompt.value = "a hang"
        panel.generate_button.click()
        await until(lambda: any(r.path == "/generate" for r in sim.request_log))
        status = await panel.refresh()
        loop = asyncio.get_running_loop()
        started = loop.time()
        panel.generate_button.click()  # Cancel
        await panel.wait_idle()
        took = loop.time() - started
        after_cancel = (panel.image_output.caption.value, panel.generate_button.description)
        await generate(panel, "after the hang")
        panel.close()
        return panel, status, took, after_cancel

    panel, status, took, (caption, button) = asyncio.run(body())
    assert status.state is ServerState.BUSY
    assert took < 1.0
    assert "Cancelled" in caption and button == "Generate"
    assert panel.image_output.current is panel.last_generation is not None
