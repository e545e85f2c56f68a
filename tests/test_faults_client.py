"""The fault matrix at the client level: every simulator fault, against the real client.

For each fault: the package's own exception class (or, for a status check, an
offline status with the reason in words), a sentence that says what happened,
and nothing already received lost: an image archived before the fault stays,
a batch keeps the images around the failed one, and the server is usable again
once the fault is gone. RELIABILITY.md is the table of these outcomes.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import httpx
import pytest
from test_no_loss import assert_archive_consistent, index_rows

import pixery_widgets as px
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import (
    BadResponseError,
    ConnectionFailedError,
    ImageDecodeError,
    ModelUnavailableError,
    PixeryError,
    RequestRejectedError,
    ServerError,
    ServerTimeoutError,
)
from pixery_widgets.core.http import MAX_RESPONSE_BYTES
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers import _base, selfhosted
from pixery_widgets.providers.selfhosted import SelfHostedClient
from pixery_widgets.providers.status import acheck_selfhosted
from pixery_widgets.session.menu import build_menu
from pixery_widgets.sim._faults import decompression_bomb_png

#: A generation gives up after this long here (300 s in real use).
GENERATE_BUDGET = 1.5


@pytest.fixture(autouse=True)
def _short_generate_timeout(monkeypatch):
    monkeypatch.setattr(selfhosted, "GENERATE_TIMEOUT", httpx.Timeout(GENERATE_BUDGET, connect=1.0))


def run(coro):
    return asyncio.run(coro)


def settings_for(sim, tmp_path) -> Settings:
    return Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "archive")


# -- /generate: each fault, its error and its words ------------------------------------------

#: kind → (error class, words the message must contain, the error's short reason or None)
GENERATE_FAULTS = {
    "hang": (ServerTimeoutError, "did not answer within 1.5 s", "timed out"),
    "slow_bytes": (ServerTimeoutError, "started answering but did not finish", "timed out"),
    "reset_mid_body": (
        ConnectionFailedError,
        "dropped the connection before its answer was complete",
        "connection dropped",
    ),
    "html_500": (
        ServerError,
        "failed with an internal error: HTTP 500 with an HTML page",
        "error answer (HTTP 500)",
    ),
    "truncated_json": (
        BadResponseError,
        "answered with JSON that is cut off or malformed",
        "bad answer (not JSON)",
    ),
    "missing_fields": (ImageDecodeError, "Your server's answer has no image data", None),
    "mistyped_fields": (BadResponseError, "has a seed that is not a number: 'abc'", None),
    "invalid_base64": (
        ImageDecodeError,
        "The image in your server's answer is not valid base64",
        None,
    ),
    "not_an_image": (
        ImageDecodeError,
        "The image in your server's answer is not a readable image",
        None,
    ),
    "decompression_bomb": (
        ImageDecodeError,
        "The image in your server's answer declares far too many pixels to be real; "
        "refused (possible decompression bomb)",
        None,
    ),
    "huge_body": (
        BadResponseError,
        "sent an answer larger than 64 MB; refused",
        "answer too large",
    ),
    "status_400": (
        RequestRejectedError,
        "refused the request: Unknown model 'mystery-xl'. Available models: animagine",
        "error answer (HTTP 400)",
    ),
    "status_422": (RequestRejectedError, "refused the request: prompt: Field required", None),
    "status_503": (
        ModelUnavailableError,
        "refused the request: Model 'animagine' is not downloaded on this server",
        "error answer (HTTP 503)",
    ),
}


STATUS_CODES = {"html_500": 500, "status_400": 400, "status_422": 422, "status_503": 503}


@pytest.mark.parametrize("kind", sorted(GENERATE_FAULTS))
def test_a_generate_fault_is_a_package_error_in_words_and_nothing_received_is_lost(
    kind, sim, tmp_path
):
    error_class, words, reason = GENERATE_FAULTS[kind]
    settings = settings_for(sim, tmp_path)
    root = settings.archive_dir
    before = run(px.agenerate("before the fault", seed=1, settings=settings))
    if kind == "decompression_bomb":  # built once, before the generate's short clock starts
        decompression_bomb_png()  # (it takes about 1.5 s on a loaded machine)

    sim.set_fault("/generate", kind, times=1)
    with pytest.raises(PixeryError) as info:
        run(px.agenerate("during the fault", seed=2, settings=settings))
    error = info.value
    assert type(error) is error_class, f"{kind}: {type(error).__name__}: {error}"
    assert words in str(error), str(error)
    if reason is not None:
        assert error.reason == reason
    if isinstance(error, ServerError):  # the HTTP status and the server's own words are kept
        assert error.status_code == STATUS_CODES[kind]
        assert error.detail is not None or kind == "html_500"

    # What was received before is still there, whole; the server works again.
    after = run(px.agenerate("after the fault", seed=3, settings=settings))
    assert set(index_rows(root)) == {before.id, after.id}
    assert assert_archive_consistent(root) == {before.id, after.id}


@pytest.mark.parametrize("kind", ["hang", "reset_mid_body", "html_500", "invalid_base64"])
def test_in_a_batch_the_images_around_a_fault_are_kept(kind, sim, tmp_path):
    settings = settings_for(sim, tmp_path)
    sim.set_fault("/generate", kind, times=1)  # the first job meets it
    batch = run(
        px.arun_batch(
            ["meets the fault", "after it", "and after that"],
            seeds=[4],
            settings=settings,
            progress=False,
        )
    )
    (failure,) = batch.failed
    assert failure.job.index == 0 and isinstance(failure.error, GENERATE_FAULTS[kind][0])
    assert failure.generation is None
    assert [g.prompt for g in batch.generations] == ["after it", "and after that"]
    assert assert_archive_consistent(settings.archive_dir) == {g.id for g in batch.generations}


def test_faults_that_do_no_harm_still_give_the_image(sim, tmp_path):
    """A proxy's wrong content type and unknown extra fields are tolerated, not refused."""
    settings = settings_for(sim, tmp_path)
    sim.set_fault("/generate", "wrong_content_type", times=1)
    plain = run(px.agenerate("labelled text/html", seed=5, settings=settings))
    sim.set_fault("/generate", "extra_fields", times=1)
    extra = run(px.agenerate("with extras", seed=5, settings=settings))
    sim.set_fault("/generate", "unknown_model", times=1)  # only changes model lists
    same = run(px.agenerate("labelled text/html", seed=5, settings=settings))
    assert plain.image.size == extra.image.size == (1024, 1024)
    assert extra.params["scheduler"] == "euler_a"  # the server's extra parameters are kept
    assert same.png_bytes == plain.png_bytes
    assert len(assert_archive_consistent(settings.archive_dir)) == 3


def test_a_refused_connection_says_so_and_a_server_killed_mid_drawing_says_it_dropped(
    closed_port_url, sim_factory, tmp_path
):
    with pytest.raises(ConnectionFailedError) as info:
        run(px.agenerate("nobody home", settings=Settings(selfhosted_url=closed_port_url)))
    assert "refused the connection; is the server running?" in str(info.value)
    assert info.value.reason == "connection refused"

    sim = sim_factory(gen_seconds=2.0)
    settings = settings_for(sim, tmp_path)

    async def kill_mid_drawing():
        task = asyncio.create_task(px.agenerate("vanishing box", settings=settings))
        while not any(r.path == "/generate" for r in sim.request_log):
            await asyncio.sleep(0.01)
        await asyncio.to_thread(sim.kill)
        return await task

    with pytest.raises(ConnectionFailedError, match="dropped the connection") as info:
        run(kill_mid_drawing())
    assert info.value.reason == "connection dropped"
    assert assert_archive_consistent(settings.archive_dir) == set()


def test_a_huge_answer_is_refused_while_streaming_not_after(sim, tmp_path, monkeypatch):
    """200 MB on offer: the client stops reading at its limit (64 MB), never holding it all."""
    read = {"bytes": 0}
    real_read_limited = _base.read_limited

    async def counting(response, limit=MAX_RESPONSE_BYTES):
        chunks = response.aiter_bytes

        async def counted(*args, **kwargs):
            async for chunk in chunks(*args, **kwargs):
                read["bytes"] += len(chunk)
                yield chunk

        response.aiter_bytes = counted
        return await real_read_limited(response, limit)

    monkeypatch.setattr(_base, "read_limited", counting)
    sim.set_fault("/generate", "huge_body", times=1)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(BadResponseError, match="larger than 64 MB; refused"):
            run(px.agenerate("enormous", settings=settings_for(sim, tmp_path)))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert MAX_RESPONSE_BYTES < read["bytes"] <= MAX_RESPONSE_BYTES + 1024 * 1024
    assert read["bytes"] < 0.4 * 200 * 1024 * 1024  # well short of the 200 MB on offer
    assert peak < 110 * 1024 * 1024, f"peak traced memory {peak / 2**20:.0f} MB"
    assert elapsed < 30
    # The server is fine afterwards (it stopped streaming when we hung up).
    assert run(px.agenerate("normal again", settings=settings_for(sim, tmp_path))).image


# -- /health: the status check never raises; it says offline, and why --------------------------

#: kind → (state, words the reason must contain, error class from SelfHostedClient.health())
HEALTH_FAULTS = {
    "hang": (ServerState.OFFLINE, "timed out", ServerTimeoutError),
    "slow_bytes": (ServerState.OFFLINE, "timed out", ServerTimeoutError),
    "reset_mid_body": (ServerState.OFFLINE, "connection dropped", ConnectionFailedError),
    "html_500": (ServerState.OFFLINE, "error answer (HTTP 500)", ServerError),
    "truncated_json": (ServerState.OFFLINE, "bad answer (not JSON)", BadResponseError),
    "missing_fields": (ServerState.OFFLINE, "has no 'status'", BadResponseError),
    "mistyped_fields": (ServerState.OFFLINE, "no list of 'available_models'", BadResponseError),
    "huge_body": (ServerState.OFFLINE, "answer too large", BadResponseError),
    "status_400": (ServerState.OFFLINE, "error answer (HTTP 400)", RequestRejectedError),
    "status_422": (ServerState.OFFLINE, "error answer (HTTP 422)", RequestRejectedError),
    "status_503": (ServerState.OFFLINE, "error answer (HTTP 503)", ModelUnavailableError),
    "wrong_content_type": (ServerState.HEALTHY, None, None),
}


@pytest.mark.parametrize("kind", sorted(HEALTH_FAULTS))
def test_a_health_fault_shows_offline_with_the_reason_and_keeps_the_known_menu(kind, sim_factory):
    sim = sim_factory(available_models=["animagine", "pony"])
    settings = Settings(selfhosted_url=sim.url)
    assert run(acheck_selfhosted(settings)).state is ServerState.HEALTHY  # the menu is known
    state, words, error_class = HEALTH_FAULTS[kind]

    sim.set_fault("/health", kind, times=1)
    started = time.monotonic()
    status = run(acheck_selfhosted(settings))
    assert time.monotonic() - started < 2.5  # a status check is quick whatever the server does
    assert status.state is state, status
    if words is not None:
        assert words in status.reason
        assert f"Offline: {status.reason}" in status.summary()
        assert sim.url in status.summary()
    assert status.local_models == ("animagine", "pony")  # the last menu it gave stays

    if error_class is not None:
        sim.set_fault("/health", kind, times=1)
        with pytest.raises(PixeryError) as info:
            run(SelfHostedClient(sim.url).health())
        assert type(info.value) is error_class
        assert "Your server" in str(info.value) or "server's /health" in str(info.value)
    assert run(acheck_selfhosted(settings)).state is ServerState.HEALTHY  # fault gone: healthy


def test_a_refused_or_hanging_health_check_is_offline_in_words(closed_port_url, hanging_port):
    refused = run(acheck_selfhosted(Settings(selfhosted_url=closed_port_url)))
    assert refused.state is ServerState.OFFLINE and refused.reason == "connection refused"
    started = time.monotonic()
    hung = run(acheck_selfhosted(Settings(selfhosted_url=hanging_port)))
    assert time.monotonic() - started < 2.5
    assert hung.state is ServerState.OFFLINE and hung.reason == "timed out"
    assert "Offline: timed out" in hung.summary()


def test_unknown_health_fields_are_kept_and_an_unknown_model_is_offered(sim):
    settings = Settings(selfhosted_url=sim.url)
    sim.set_fault("/health", "extra_fields", times=1)
    status = run(acheck_selfhosted(settings))
    assert status.state is ServerState.HEALTHY
    assert status.health.extra["server_version"] == "9.9.9-sim"

    sim.set_fault("*", "unknown_model", times=3)  # /health, /models and /loras of one check
    status = run(acheck_selfhosted(settings))
    assert "mystery-xl" in status.local_models
    assert status.models["mystery-xl"].default_steps == 30
    menu = {e.id: e for e in build_menu(status, ())}
    assert menu["mystery-xl"].enabled and menu["mystery-xl"].is_local
    assert menu["mystery-xl"].label  # shown under some name, not dropped


def test_faults_on_models_and_loras_leave_the_server_usable(sim):
    """/health answered: trouble with the details degrades the panel, not the status."""
    settings = Settings(selfhosted_url=sim.url)
    sim.set_fault("/models", "html_500", times=1)
    sim.set_fault("/loras", "truncated_json", times=1)
    status = run(acheck_selfhosted(settings))
    assert status.state is ServerState.HEALTHY
    assert status.models is None and status.loras == ()
    assert status.local_models == ("animagine", "pony", "noobai")
