"""The self-hosted client against the simulator, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
import time

import pytest
from env_helpers import Env
from PIL import Image

import pixery_widgets as px
from pixery_widgets import (
    InvalidRequestError,
    ModelUnavailableError,
    RequestRejectedError,
    ServerState,
    UnknownLoraError,
    acheck_selfhosted,
    agenerate,
    load_settings,
)
from pixery_widgets.providers.selfhosted import SelfHostedClient


def run(coro):
    return asyncio.run(coro)


def settings_for(url: str, **env: str):
    return load_settings({"SELFHOSTED_API_URL": url, **env})


def test_a_healthy_server_reports_health_models_and_loras(sim):
    status = run(acheck_selfhosted(settings_for(sim.url)))
    assert status.state is ServerState.HEALTHY
    assert status.health.available_models == ("animagine", "pony", "noobai")
    assert status.health.gpu_name
    assert set(status.models) == {"animagine", "pony", "noobai"}
    assert status.models["pony"].default_steps == 25
    assert status.loras == tuple(sim.config.loras)
    assert "Healthy" in status.summary()


def test_no_model_loaded_counts_as_healthy(sim_factory):
    sim = sim_factory(start_loaded=None)
    status = run(acheck_selfhosted(settings_for(sim.url)))
    assert status.state is ServerState.HEALTHY
    assert status.health.status == "no_model_loaded"
    assert status.local_models == ("animagine", "pony", "noobai")


def test_models_and_loras_are_fetched_only_after_health_answered(sim_factory):
    """(That they overlap is measured in benchmarks/bench_menu_latency.py.)"""
    sim = sim_factory()
    run(acheck_selfhosted(settings_for(sim.url)))
    paths = [entry.path for entry in sim.request_log]
    assert paths[0] == "/health"
    assert sorted(paths[1:]) == ["/loras", "/models"]


def test_same_seed_gives_the_same_bytes_and_different_prompts_differ(sim):
    s = settings_for(sim.url)
    a = run(
        agenerate(
            "a red fox in snow", model="animagine", seed=42, width=768, height=1344, settings=s
        )
    )
    b = run(
        agenerate(
            "a red fox in snow", model="animagine", seed=42, width=768, height=1344, settings=s
        )
    )
    c = run(
        agenerate(
            "a blue whale at night", model="animagine", seed=42, width=768, height=1344, settings=s
        )
    )
    assert a.png_bytes == b.png_bytes
    assert a.png_bytes != c.png_bytes
    assert a.image.size == (768, 1344) and a.seed == 42
    assert a.params["width"] == 768 and a.params["model"] == "animagine"


def test_a_random_seed_is_reported_back(sim):
    g = run(agenerate("a cat", model="pony", settings=settings_for(sim.url)))
    assert isinstance(g.seed, int)


def test_lora_and_reference_reach_the_server(sim):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (250, 10, 10)).save(buf, format="PNG")
    lora = sim.config.loras[0]
    g = run(
        agenerate(
            "a cat",
            model="noobai",
            seed=1,
            lora=lora,
            lora_scale=1.1,
            reference=buf.getvalue(),
            ip_adapter_scale=0.4,
            settings=settings_for(sim.url),
        )
    )
    body = sim.request_log[-1].json
    assert body["lora_name"] == lora and body["lora_scale"] == 1.1
    assert body["reference_image"] and body["ip_adapter_scale"] == 0.4
    assert g.image.size == (1024, 1024)


def test_a_body_with_a_reference_is_encoded_off_the_event_loop(sim, monkeypatch):
    """A reference makes a /generate body of MBs: encoding it must not stall the kernel."""
    import threading

    from pixery_widgets.providers import selfhosted

    threads: list[str] = []
    real = selfhosted.encode_json

    def spying(body):
        threads.append(threading.current_thread().name)
        return real(body)

    monkeypatch.setattr(selfhosted, "encode_json", spying)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 90, 200)).save(buf, format="PNG")
    run(agenerate("a cat", seed=1, reference=buf.getvalue(), settings=settings_for(sim.url)))
    assert len(threads) == 1 and threads[0] != threading.main_thread().name
    assert sim.request_log[-1].json["reference_image"] == base64.b64encode(buf.getvalue()).decode()


def test_an_unknown_lora_is_refused_before_generating(sim):
    with pytest.raises(UnknownLoraError, match="Available LoRAs"):
        run(agenerate("a cat", lora="no_such_lora", settings=settings_for(sim.url)))
    assert "/generate" not in [entry.path for entry in sim.request_log]


def test_a_misspelt_keyword_is_refused_with_a_suggestion_before_anything_is_sent(sim):
    """``sed=7`` used to reach the server as nothing at all (the seed silently random)."""
    settings = settings_for(sim.url)
    lora = sim.config.loras[0]
    with pytest.raises(
        InvalidRequestError, match=r"animagine does not take 'sed'\. Did you mean 'seed'\?"
    ):
        run(agenerate("a cat", model="animagine", sed=7, lora=lora, settings=settings))
    with pytest.raises(InvalidRequestError, match=r"Did you mean 'seed'\?"):
        px.generate("a cat", model="animagine", sed=7, settings=settings)
    with pytest.raises(InvalidRequestError, match=r"Did you mean 'seeds'\?"):
        px.run_batch(["a cat", "a dog"], sed=7, settings=settings, progress=False)
    with pytest.raises(InvalidRequestError, match=r"Did you mean 'seeds'\?"):
        run(px.start_batch(["a cat"], sed=7, settings=settings, progress=False))
    assert sim.request_log == []  # not even the LoRA list was asked for
    g = run(agenerate("a cat", model="animagine", seed=7, settings=settings))
    assert g.seed == 7 and [r.json["seed"] for r in sim.request_log] == [7]


def test_another_back_ends_option_is_refused_naming_it(sim):
    with pytest.raises(InvalidRequestError) as info:
        px.generate("a cat", model="animagine", quality="hd", settings=settings_for(sim.url))
    assert str(info.value) == "animagine does not take quality; only OpenAI models do."
    assert sim.request_log == []


def test_a_lora_with_a_malformed_server_url_says_what_is_wrong_with_the_url(tmp_path):
    """Not "no server is configured": the user did configure one, wrongly."""
    settings = Env(tmp_path, SELFHOSTED_API_URL="ftp://203.0.113.7").load()
    assert settings.url_error
    with pytest.raises(px.ConfigurationError) as info:
        run(agenerate("a cat", lora="pixel_art", settings=settings))
    assert str(info.value) == settings.url_error


def test_a_missing_checkpoint_reports_the_servers_words(sim_factory):
    sim = sim_factory(missing={"pony"})
    status = run(acheck_selfhosted(settings_for(sim.url)))
    menu = {e.id: e for e in px.model_menu(status, keys=())}
    assert menu["pony"].reason == "not downloaded"
    with pytest.raises(ModelUnavailableError) as info:
        run(agenerate("a cat", model="pony", settings=settings_for(sim.url)))
    assert info.value.status_code == 503 and "pony" in str(info.value)


def test_server_side_validation_errors_carry_the_server_detail(sim):
    client = SelfHostedClient(sim.url)
    from pixery_widgets.core.types import GenerationRequest

    too_big = GenerationRequest(
        prompt="a cat", model="animagine", provider="selfhosted", width=4096
    )
    with pytest.raises(RequestRejectedError, match="width") as info:
        run(client.generate(too_big))
    assert info.value.status_code == 422 and isinstance(info.value.detail, list)
    unknown = GenerationRequest(prompt="a cat", model="sd15", provider="selfhosted")
    with pytest.raises(RequestRejectedError, match="animagine") as info:
        run(client.generate(unknown))
    assert info.value.status_code == 400


def test_switch_model_prewarms(sim):
    client = SelfHostedClient(sim.url)
    assert run(client.switch_model("pony")) == "pony"
    assert run(client.health()).current_model == "pony"


def test_a_server_that_never_answers_is_offline_timed_out_within_2_5_s(hanging_port):
    started = time.monotonic()
    status = run(acheck_selfhosted(settings_for(hanging_port)))
    elapsed = time.monotonic() - started
    assert status.state is ServerState.OFFLINE and status.reason == "timed out"
    assert elapsed < 2.5


def test_a_closed_port_is_offline_refused_at_once(closed_port_url):
    started = time.monotonic()
    status = run(acheck_selfhosted(settings_for(closed_port_url)))
    assert status.state is ServerState.OFFLINE and status.reason == "connection refused"
    assert time.monotonic() - started < 1.0


def test_not_configured_when_the_url_is_absent(tmp_path):
    status = run(acheck_selfhosted(Env(tmp_path).load()))
    assert status.state is ServerState.NOT_CONFIGURED
    assert "SELFHOSTED_API_URL" in status.summary()


def test_a_timeout_during_our_own_generation_means_busy_not_offline(sim_factory):
    sim = sim_factory(gen_seconds=1.5)
    s = settings_for(sim.url)

    async def scenario():
        drawing = asyncio.create_task(agenerate("a cat", seed=1, settings=s))
        await asyncio.sleep(0.3)
        during = await acheck_selfhosted(s, timeout=0.5)
        await drawing
        after = await acheck_selfhosted(s)
        return during, after

    during, after = run(scenario())
    assert during.state is ServerState.BUSY
    assert after.state is ServerState.HEALTHY


def test_a_server_gone_after_answering_keeps_its_model_list_in_the_menu(sim_factory):
    sim = sim_factory(available_models=["animagine", "mystery-xl"])
    s = settings_for(sim.url)
    assert run(acheck_selfhosted(s)).state is ServerState.HEALTHY
    sim.stop()
    status = run(acheck_selfhosted(s))
    assert status.state is ServerState.OFFLINE
    local = [e.id for e in px.model_menu(status, keys=()) if e.is_local]
    assert local == ["animagine", "mystery-xl"]


SCRIPT = """
import os, pixery_widgets as px
g = px.generate("a lighthouse", model="animagine", seed=3)
g2 = px.generate("a lighthouse", model="animagine", seed=3)
print(g.seed, g.image.size, g.png_bytes == g2.png_bytes)
"""


def test_the_sync_twin_works_in_a_plain_script(sim, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "SELFHOSTED_API_URL": sim.url,
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PIXERY_ARCHIVE_DIR": str(tmp_path / "out"),
        },
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "(1024,", "1024)", "True"]


def test_the_sync_twin_works_inside_a_running_event_loop(sim):
    async def inside_a_kernel_like_loop():
        return px.generate("a cat", seed=5, settings=settings_for(sim.url))

    g = run(inside_a_kernel_like_loop())
    assert g.seed == 5


def test_the_caption_names_model_seed_size_time_cost_and_a_short_path(sim, tmp_path):
    g = run(agenerate("a cat", seed=9, width=832, height=1216, settings=settings_for(sim.url)))
    caption = g.caption()
    assert caption.startswith("animagine · seed 9 · 832×1216 · ")
    assert "$0.000" in caption
    # The archive lies below the working directory (a temp dir here): shown relative.
    assert str(g.path.relative_to(tmp_path)) in caption and str(tmp_path) not in caption
