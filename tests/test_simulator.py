"""The simulator behaves like the self-hosted SDXL server, over real loopback HTTP."""

from __future__ import annotations

import base64
import binascii
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageStat

from pixery_widgets.providers._selfhosted_answers import _HEALTH_KEYS
from pixery_widgets.sim import Fault, FaultKind, SimConfig, SimServer, parse_fault_spec
from pixery_widgets.sim._draw import render_png_base64

#: What the client reads from /health: the simulator must answer exactly these.
HEALTH_KEYS = _HEALTH_KEYS


def png(answer: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(answer["image"], validate=True)))


def generate(sim: SimServer, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{sim.url}/generate", json={"prompt": "a lighthouse at dusk", **body}, timeout=10
    )


def red_png_base64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# --- routes and shapes ---------------------------------------------------------------


def test_health_reports_every_field_of_a_loaded_server(sim: SimServer) -> None:
    health = httpx.get(f"{sim.url}/health").json()
    assert set(health) == HEALTH_KEYS
    assert health["status"] == "healthy"
    assert health["current_model"] == "animagine"
    assert health["available_models"] == ["animagine", "pony", "noobai"]
    assert health["ip_adapter_loaded"] is True
    assert health["cuda_available"] is True
    assert health["gpu_name"] == "Simulated RTX 4090"
    assert health["vram_allocated_gb"] > 0
    assert health["idle_timeout_minutes"] == 60


def test_health_says_no_model_loaded_until_the_first_generation(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory(start_loaded=None)
    health = httpx.get(f"{sim.url}/health").json()
    assert (health["status"], health["current_model"], health["vram_allocated_gb"]) == (
        "no_model_loaded",
        None,
        0.0,
    )
    assert generate(sim, model="pony").status_code == 200
    health = httpx.get(f"{sim.url}/health").json()
    assert (health["status"], health["current_model"]) == ("healthy", "pony")


def test_health_without_a_gpu_has_null_gpu_fields(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory(gpu_name=None, ip_adapter_loaded=False)
    health = httpx.get(f"{sim.url}/health").json()
    assert health["cuda_available"] is False
    assert health["gpu_name"] is None and health["vram_allocated_gb"] is None
    assert health["ip_adapter_loaded"] is False


def test_models_lists_the_menu_with_defaults_and_download_state(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory(missing={"pony"})
    answer = httpx.get(f"{sim.url}/models").json()
    assert answer["current"] == "animagine"
    models = answer["models"]
    assert list(models) == ["animagine", "pony", "noobai"]
    assert {name: (m["default_steps"], m["default_cfg"]) for name, m in models.items()} == {
        "animagine": (28, 5.0),
        "pony": (25, 7.0),
        "noobai": (28, 5.5),
    }
    assert [m["downloaded"] for m in models.values()] == [True, False, True]
    assert [m["loaded"] for m in models.values()] == [True, False, False]
    assert all(isinstance(m["description"], str) and m["description"] for m in models.values())


def test_loras_lists_stems_and_may_be_empty(sim_factory: Callable[..., SimServer]) -> None:
    assert httpx.get(f"{sim_factory().url}/loras").json() == {
        "loras": ["detail_tweaker", "add_more_details", "pixel_art"]
    }
    assert httpx.get(f"{sim_factory(loras=[]).url}/loras").json() == {"loras": []}


def test_switch_model_loads_takes_switch_seconds_and_rejects_bad_models(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory(switch_seconds=0.3, missing={"noobai"})
    started = time.monotonic()
    answer = httpx.post(f"{sim.url}/switch-model", json={"model": "pony"})
    assert answer.json() == {"status": "ok", "model": "pony"}
    assert time.monotonic() - started >= 0.28
    # Already loaded: no delay. With a 5 s switch, a wrongly taken delay is a timeout.
    sim.config.switch_seconds = 5
    again = httpx.post(f"{sim.url}/switch-model", json={"model": "pony"}, timeout=2)
    assert again.json() == {"status": "ok", "model": "pony"}
    assert httpx.get(f"{sim.url}/health").json()["current_model"] == "pony"

    unknown = httpx.post(f"{sim.url}/switch-model", json={"model": "sd15"})
    assert unknown.status_code == 400
    assert all(name in unknown.json()["detail"] for name in ("animagine", "pony", "noobai"))
    missing = httpx.post(f"{sim.url}/switch-model", json={"model": "noobai"})
    assert missing.status_code == 503 and isinstance(missing.json()["detail"], str)
    assert httpx.post(f"{sim.url}/switch-model", json={}).status_code == 422


def test_generate_answers_a_png_the_seed_and_the_parameters_with_model_defaults(
    sim: SimServer,
) -> None:
    answer = generate(sim, model="pony", width=832, height=1216, seed=7).json()
    assert set(answer) == {"image", "seed", "parameters"}
    assert answer["seed"] == 7
    image = png(answer)
    assert (image.format, image.size) == ("PNG", (832, 1216))
    parameters = answer["parameters"]
    assert parameters["prompt"] == "a lighthouse at dusk"
    assert (parameters["steps"], parameters["cfg_scale"], parameters["model"]) == (25, 7.0, "pony")
    assert (parameters["width"], parameters["height"]) == (832, 1216)
    assert "score_4" in parameters["negative_prompt"]  # the model's own default negative


def test_generate_echoes_given_parameters_and_the_lora(sim: SimServer) -> None:
    answer = generate(
        sim,
        negative_prompt="blurry",
        steps=12,
        cfg_scale=3.5,
        lora_name="pixel_art",
        lora_scale=1.2,
    ).json()
    parameters = answer["parameters"]
    assert (parameters["negative_prompt"], parameters["steps"], parameters["cfg_scale"]) == (
        "blurry",
        12,
        3.5,
    )
    assert (parameters["lora_name"], parameters["lora_scale"]) == ("pixel_art", 1.2)


def test_generate_picks_a_random_seed_when_none_is_given(sim: SimServer) -> None:
    seeds = {generate(sim, seed=None, width=512, height=512).json()["seed"] for _ in range(3)}
    assert len(seeds) > 1
    assert all(isinstance(seed, int) and 0 <= seed < 2**32 for seed in seeds)


# --- validation and errors -----------------------------------------------------------

RANGES: dict[str, tuple[float, float, type]] = {
    "width": (512, 1536, int),
    "height": (512, 1536, int),
    "steps": (1, 50, int),
    "cfg_scale": (1.0, 20.0, float),
    "ip_adapter_scale": (0.0, 1.0, float),
    "lora_scale": (0.0, 1.5, float),
}


@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[str, float]:
    field = draw(st.sampled_from(sorted(RANGES)))
    low, high, kind = RANGES[field]
    if kind is int:
        value = draw(st.integers(-(10**6), int(low) - 1) | st.integers(int(high) + 1, 10**6))
    else:
        below = st.floats(-1e6, low, exclude_max=True, allow_nan=False)
        value = draw(below | st.floats(high, 1e6, exclude_min=True, allow_nan=False))
    return field, value


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=out_of_range())
def test_out_of_range_fields_get_fastapis_422_list(sim: SimServer, case: tuple[str, float]) -> None:
    field, value = case
    answer = generate(sim, **{field: value})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, list)
    assert any(
        entry["loc"] == ["body", field] and entry["msg"] and entry["type"] for entry in detail
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": None},
        {"prompt": "x", "width": "wide"},
        {"prompt": "x", "steps": 2.5},
        {"prompt": "x", "seed": "abc"},
    ],
)
def test_missing_or_mistyped_fields_get_422(sim: SimServer, body: dict[str, Any]) -> None:
    answer = httpx.post(f"{sim.url}/generate", json=body)
    assert answer.status_code == 422
    assert isinstance(answer.json()["detail"], list)


def test_range_boundaries_are_accepted(sim: SimServer) -> None:
    low = generate(
        sim,
        width=512,
        height=1536,
        steps=1,
        cfg_scale=1.0,
        ip_adapter_scale=0.0,
        lora_scale=0.0,
        seed=1,
    )
    high = generate(
        sim,
        width=1536,
        height=512,
        steps=50,
        cfg_scale=20.0,
        ip_adapter_scale=1.0,
        lora_scale=1.5,
        seed=1,
    )
    assert (low.status_code, high.status_code) == (200, 200)
    assert png(low.json()).size == (512, 1536)


def test_unknown_model_and_lora_get_400_listing_what_is_available(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory()
    model = generate(sim, model="sd15")
    assert model.status_code == 400
    assert "sd15" in model.json()["detail"]
    assert all(name in model.json()["detail"] for name in ("animagine", "pony", "noobai"))
    lora = generate(sim, lora_name="nope")
    assert lora.status_code == 400
    assert all(name in lora.json()["detail"] for name in ("nope", "detail_tweaker", "pixel_art"))
    assert generate(sim_factory(loras=[]), lora_name="pixel_art").status_code == 400


def test_missing_checkpoint_gets_503_with_a_detail_string(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory(missing={"noobai"})
    answer = generate(sim, model="noobai")
    assert answer.status_code == 503
    assert "noobai" in answer.json()["detail"]


def test_the_status_faults_answer_in_the_handlers_own_words(
    sim_factory: Callable[..., SimServer],
) -> None:
    """The 400 and 503 faults must read exactly as the real errors do (DESIGN: same bodies)."""
    real = sim_factory(missing={"animagine"}, start_loaded="pony")
    faulty = sim_factory()
    faulty.set_fault("/generate", "status_503", times=1)
    assert generate(faulty).json() == generate(real, model="animagine").json()
    faulty.set_fault("/generate", "status_400", times=1)
    assert generate(faulty).json() == generate(real, model="mystery-xl").json()


@pytest.mark.parametrize(
    "reference",
    [
        "%%%not base64%%%",
        "data:image/png;base64," + red_png_base64(),
        base64.b64encode(b"plain text").decode(),
    ],
)
def test_a_bad_reference_image_gets_400(sim: SimServer, reference: str) -> None:
    answer = generate(sim, reference_image=reference)
    assert answer.status_code == 400
    assert isinstance(answer.json()["detail"], str)


def test_a_reference_tints_the_picture_only_with_ip_adapter(
    sim_factory: Callable[..., SimServer],
) -> None:
    with_adapter, without = sim_factory(), sim_factory(ip_adapter_loaded=False)
    plain = generate(with_adapter, seed=3).json()["image"]
    tinted = generate(
        with_adapter, seed=3, reference_image=red_png_base64(), ip_adapter_scale=1.0
    ).json()["image"]
    assert tinted != plain
    assert (
        ImageStat.Stat(png({"image": tinted}).convert("RGB")).mean[0]
        > ImageStat.Stat(png({"image": plain}).convert("RGB")).mean[0]
    )
    # No IP-Adapter: the reference, even an unreadable one, is ignored silently.
    ignored = generate(without, seed=3, reference_image="%%%not base64%%%")
    assert ignored.status_code == 200 and ignored.json()["image"] == plain


# --- pictures ------------------------------------------------------------------------


def test_the_same_request_gives_the_same_bytes_even_uncached(sim: SimServer) -> None:
    first = generate(sim, seed=11, lora_name="pixel_art").json()["image"]
    render_png_base64.cache_clear()
    assert generate(sim, seed=11, lora_name="pixel_art").json()["image"] == first


def test_different_prompts_give_visibly_different_non_flat_pictures(sim: SimServer) -> None:
    cat = png(generate(sim, prompt="a cat in a hat", seed=1).json()).convert("RGB")
    dog = png(generate(sim, prompt="a dog on a skateboard", seed=1).json()).convert("RGB")
    for image in (cat, dog):
        assert min(ImageStat.Stat(image).stddev) > 10
        assert len(image.getcolors(maxcolors=1 << 20) or []) > 100
    diff = Image.frombytes(
        "L",
        cat.size,
        bytes(a != b for a, b in zip(cat.tobytes()[::3], dog.tobytes()[::3], strict=True)),
    )
    assert ImageStat.Stat(diff).mean[0] > 0.3  # most pixels differ
    assert (
        generate(sim, prompt="a cat in a hat", seed=2).json()["image"]
        != generate(sim, prompt="a cat in a hat", seed=1).json()["image"]
    )


def test_a_repeated_request_is_drawn_once_and_then_comes_from_the_cache(sim: SimServer) -> None:
    # render_png_base64 is an lru_cache shared with the in-process simulator's thread.
    prompt = f"cached {time.monotonic_ns()}"  # not drawn before in this process
    before = render_png_base64.cache_info()
    first = generate(sim, prompt=prompt, seed=12345).json()["image"]
    drawn = render_png_base64.cache_info()
    assert (drawn.hits, drawn.misses) == (before.hits, before.misses + 1)
    second = generate(sim, prompt=prompt, seed=12345).json()["image"]
    repeated = render_png_base64.cache_info()
    assert (repeated.hits, repeated.misses) == (drawn.hits + 1, drawn.misses)
    assert second == first


def test_small_answers_are_not_held_back_by_nagle(sim: SimServer) -> None:
    # With Nagle's algorithm on, each small answer waits ~40 ms for a delayed ACK.
    # asyncio turns it off (TCP_NODELAY) on accepted sockets only when the listening
    # socket's proto is IPPROTO_TCP (sim._server.bind_socket): check the served connection.
    with httpx.Client() as client:
        assert client.get(f"{sim.url}/health").status_code == 200  # kept alive
        server = sim._server
        assert server is not None
        connections = list(server.server_state.connections)
        assert len(connections) == 1
        sock = connections[0].transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


# --- blocking and the idle clock -----------------------------------------------------


def test_a_generation_blocks_every_other_request_but_connections_are_accepted(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory(gen_seconds=1.0)
    started = time.monotonic()
    worker = threading.Thread(target=generate, args=(sim,))
    worker.start()
    time.sleep(0.1)
    with pytest.raises(httpx.ReadTimeout):  # connected fine, then no answer in time
        httpx.get(f"{sim.url}/health", timeout=0.3)
    control = time.monotonic()
    # The control API is not blocked.
    assert httpx.get(f"{sim.url}/_sim/config", timeout=0.5).status_code == 200
    assert time.monotonic() - control < 0.3
    assert httpx.get(f"{sim.url}/health", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.95
    worker.join()


def test_generations_are_served_one_at_a_time(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory(gen_seconds=0.3)
    started = time.monotonic()
    workers = [threading.Thread(target=generate, args=(sim,), kwargs={"seed": i}) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert time.monotonic() - started >= 0.85


def test_idle_seconds_counts_since_the_previous_request(sim: SimServer) -> None:
    httpx.get(f"{sim.url}/loras")
    time.sleep(0.4)
    started = time.monotonic()
    assert httpx.get(f"{sim.url}/health").json()["idle_seconds"] >= 0.3
    # The previous health check reset the clock: idle since then, not since /loras
    # (bounded by the client's own clock, so a loaded machine cannot fail it).
    idle = httpx.get(f"{sim.url}/health").json()["idle_seconds"]
    assert idle <= time.monotonic() - started + 0.01


def test_exit_when_idle_really_shuts_down(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory(idle_timeout_minutes=0.01, exit_when_idle=True)  # 0.6 s
    assert httpx.get(f"{sim.url}/health").json()["idle_timeout_minutes"] == 0.01
    deadline = time.monotonic() + 3
    while sim.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.url}/health")


# --- the in-process server -----------------------------------------------------------


def test_request_log_keeps_method_path_headers_and_json(sim: SimServer) -> None:
    generate(sim, seed=5)
    httpx.get(f"{sim.url}/health", headers={"X-Probe": "1"})
    httpx.get(f"{sim.url}/_sim/config")
    assert [(r.method, r.path) for r in sim.request_log] == [
        ("POST", "/generate"),
        ("GET", "/health"),
    ]
    _, _, headers, body = sim.request_log[0]
    assert body["seed"] == 5 and "authorization" not in headers
    assert sim.request_log[1].headers["x-probe"] == "1" and sim.request_log[1].json is None


def test_kill_drops_a_request_in_flight_and_restart_serves_on_the_same_port(
    sim_factory: Callable[..., SimServer],
) -> None:
    sim = sim_factory(gen_seconds=2.0)
    url = sim.url
    errors: list[BaseException] = []

    def doomed() -> None:
        try:
            generate(sim)
        except httpx.TransportError as exc:
            errors.append(exc)

    worker = threading.Thread(target=doomed)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.kill()
    worker.join(2)
    assert time.monotonic() - started < 1.0
    assert errors and isinstance(errors[0], httpx.ReadError | httpx.RemoteProtocolError)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")
    sim.config.gen_seconds = 0
    sim.start()
    assert sim.url == url
    assert httpx.get(f"{url}/health").json()["status"] == "healthy"


def test_restart_reboots_with_a_fresh_state(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory()
    httpx.post(f"{sim.url}/switch-model", json={"model": "noobai"})
    url = sim.url
    sim.restart()
    assert sim.url == url
    assert httpx.get(f"{url}/health").json()["current_model"] == "animagine"


def test_stop_is_quick_even_with_a_hanging_request(sim: SimServer) -> None:
    sim.set_fault("/generate", "hang")
    errors: list[BaseException] = []

    def hung() -> None:
        try:
            generate(sim)
        except httpx.TransportError as exc:
            errors.append(exc)

    worker = threading.Thread(target=hung)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    worker.join(2)
    assert errors  # the hung client sees its connection dropped, not an answer


def test_config_changes_apply_to_a_running_server(sim: SimServer) -> None:
    sim.config.missing.add("pony")
    sim.config.loras = ["only_one"]
    assert generate(sim, model="pony").status_code == 503
    assert httpx.get(f"{sim.url}/loras").json() == {"loras": ["only_one"]}
    sim.current_model = None
    assert httpx.get(f"{sim.url}/health").json()["status"] == "no_model_loaded"


def test_config_rejects_a_start_model_outside_the_menu() -> None:
    with pytest.raises(ValueError):
        SimConfig(start_loaded="sd15")
    with pytest.raises(ValueError):
        SimConfig(faults={"/health": "explode"})


# --- faults --------------------------------------------------------------------------


def raw_get(sim: SimServer, path: str) -> tuple[dict[str, str], bytes]:
    """Headers and whatever body bytes arrive before the server closes the connection."""
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:])
    return headers, body


def test_hang_reads_the_request_and_never_answers(sim: SimServer) -> None:
    sim.set_fault("/health", "hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{sim.url}/health", timeout=0.3)
    assert httpx.get(f"{sim.url}/loras", timeout=1).status_code == 200  # only that route hangs
    assert sim.request_log[0].path == "/health"


def test_slow_bytes_trickles_the_normal_answer(sim: SimServer) -> None:
    normal = httpx.get(f"{sim.url}/loras").json()
    sim.set_fault("/loras", "slow_bytes", delay=0.01)
    started = time.monotonic()
    with httpx.stream("GET", f"{sim.url}/loras") as answer:
        chunks = list(answer.iter_raw())
    body = b"".join(chunks)
    assert json.loads(body) == normal
    assert len(chunks) > len(body) // 2
    assert time.monotonic() - started >= len(body) * 0.01 * 0.9


def test_reset_mid_body_announces_the_length_then_closes_halfway(sim: SimServer) -> None:
    sim.set_fault("/health", "reset_mid_body")
    headers, body = raw_get(sim, "/health")
    assert 0 < len(body) < int(headers["content-length"])
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{sim.url}/health")


def test_html_500_is_an_html_error_page(sim: SimServer) -> None:
    sim.set_fault("/generate", "html_500")
    answer = generate(sim)
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.lstrip().startswith("<html>")


def test_wrong_content_type_serves_valid_json_as_html(sim: SimServer) -> None:
    sim.set_fault("/health", "wrong_content_type")
    answer = httpx.get(f"{sim.url}/health")
    assert answer.headers["content-type"].startswith("text/html")
    assert set(answer.json()) == HEALTH_KEYS


def test_truncated_json_is_a_complete_message_of_half_the_json(sim: SimServer) -> None:
    normal = httpx.get(f"{sim.url}/models").content
    sim.set_fault("/models", "truncated_json")
    answer = httpx.get(f"{sim.url}/models")
    assert answer.status_code == 200 and answer.content == normal[: len(normal) // 2]
    with pytest.raises(ValueError):
        answer.json()


def test_missing_fields_drops_required_keys(sim: SimServer) -> None:
    sim.set_fault("*", "missing_fields")
    assert not {"status", "available_models"} & set(httpx.get(f"{sim.url}/health").json())
    assert "models" not in httpx.get(f"{sim.url}/models").json()
    assert not {"image", "seed"} & set(generate(sim).json())


def test_mistyped_fields_puts_wrong_types_in_known_keys(sim: SimServer) -> None:
    sim.set_fault("*", "mistyped_fields")
    health = httpx.get(f"{sim.url}/health").json()
    assert health["available_models"] == "animagine" and health["idle_seconds"] == "abc"
    assert generate(sim).json()["seed"] == "abc"
    assert isinstance(httpx.get(f"{sim.url}/loras").json()["loras"], str)


def test_invalid_base64_image(sim: SimServer) -> None:
    sim.set_fault("/generate", "invalid_base64")
    image = generate(sim).json()["image"]
    with pytest.raises(binascii.Error):
        base64.b64decode(image, validate=True)
    with pytest.raises(binascii.Error):
        base64.b64decode(image)


def test_not_an_image_is_valid_base64_of_other_bytes(sim: SimServer) -> None:
    sim.set_fault("/generate", "not_an_image")
    raw = base64.b64decode(generate(sim).json()["image"], validate=True)
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(raw))


def test_decompression_bomb_is_a_small_png_declaring_a_huge_size(sim: SimServer) -> None:
    sim.set_fault("/generate", "decompression_bomb")
    raw = base64.b64decode(generate(sim).json()["image"], validate=True)
    assert len(raw) < 300_000 and raw.startswith(b"\x89PNG")
    assert int.from_bytes(raw[16:20], "big") == int.from_bytes(raw[20:24], "big") == 30000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(raw))


def _read_then_hang_up(sim: SimServer, enough: int) -> int:
    """Read a /generate answer until more than ``enough`` bytes came, then close; bytes read."""
    received = 0
    with httpx.stream("POST", f"{sim.url}/generate", json={"prompt": "x"}) as stream:
        for chunk in stream.iter_raw():
            received += len(chunk)
            if received > enough:
                break
    return received


def test_huge_body_streams_valid_json_lazily_without_a_length(sim: SimServer) -> None:
    sim.set_fault("/generate", "huge_body", times=1, size=3_000_000)
    answer = generate(sim)
    assert "content-length" not in answer.headers
    assert len(answer.json()["image"]) == 3_000_000

    sim.set_fault("/generate", "huge_body", times=1)  # the default: 200 MB
    assert _read_then_hang_up(sim, 20_000_000) > 20_000_000
    assert httpx.get(f"{sim.url}/health", timeout=2).status_code == 200  # the server shrugs it off


def test_huge_body_stops_sending_when_the_client_hangs_up(sim: SimServer, caplog) -> None:
    """Without this the rest of the 200 MB went to a closed socket, one log line a chunk."""
    caplog.set_level("WARNING", logger="asyncio")
    sim.set_fault("/generate", "huge_body", times=1)
    _read_then_hang_up(sim, 3_000_000)
    deadline = time.monotonic() + 10
    while sim._state is not None and sim._state.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim._state is not None and sim._state.in_flight == 0  # the stream has ended
    assert not [r for r in caplog.records if "socket.send() raised" in r.getMessage()]


def test_extra_fields_adds_unknown_keys_and_keeps_the_real_ones(sim: SimServer) -> None:
    sim.set_fault("*", "extra_fields")
    health = httpx.get(f"{sim.url}/health").json()
    assert set(health) > HEALTH_KEYS
    answer = generate(sim).json()
    assert {"image", "seed", "parameters"} < set(answer)
    assert "scheduler" in answer["parameters"]


def test_unknown_model_appears_in_health_and_models(sim: SimServer) -> None:
    sim.set_fault("*", "unknown_model")
    assert "mystery-xl" in httpx.get(f"{sim.url}/health").json()["available_models"]
    assert httpx.get(f"{sim.url}/models").json()["models"]["mystery-xl"]["downloaded"] is True
    assert generate(sim, model="mystery-xl").status_code == 400  # it cannot actually be used


@pytest.mark.parametrize(
    ("kind", "status", "detail_type"),
    [("status_400", 400, str), ("status_422", 422, list), ("status_503", 503, str)],
)
def test_status_faults_carry_realistic_details(
    sim: SimServer, kind: str, status: int, detail_type: type
) -> None:
    sim.set_fault("/generate", kind)
    answer = generate(sim)
    assert answer.status_code == status
    assert isinstance(answer.json()["detail"], detail_type)


def test_a_fault_can_be_limited_to_the_next_n_requests(sim: SimServer) -> None:
    sim.set_fault("health", "html_500", times=2)
    statuses = [httpx.get(f"{sim.url}/health").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert sim.config.faults == {}


def test_clear_faults(sim: SimServer) -> None:
    sim.set_fault("/health", "html_500")
    sim.set_fault("/loras", "html_500")
    sim.clear_faults("/health")
    assert httpx.get(f"{sim.url}/health").status_code == 200
    assert httpx.get(f"{sim.url}/loras").status_code == 500  # only /health was cleared
    sim.clear_faults()
    assert httpx.get(f"{sim.url}/loras").status_code == 200


def test_fault_specs_parse_like_the_cli() -> None:
    assert parse_fault_spec("/generate=html_500") == ("/generate", Fault(FaultKind.HTML_500))
    assert parse_fault_spec("health=hang:3") == ("/health", Fault(FaultKind.HANG, 3))
    for bad in ("/generate", "/generate=explode", "=hang"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


# --- control API ---------------------------------------------------------------------


def test_control_api_reads_and_changes_the_config(sim: SimServer) -> None:
    control = f"{sim.url}/_sim"
    assert httpx.get(f"{control}/config").json()["gen_seconds"] == 0
    changed = httpx.post(
        f"{control}/config", json={"missing": ["pony"], "loras": [], "current_model": None}
    ).json()
    assert changed["missing"] == ["pony"] and changed["current_model"] is None
    assert sim.config.missing == {"pony"}
    assert httpx.get(f"{sim.url}/health").json()["status"] == "no_model_loaded"
    assert httpx.post(f"{control}/config", json={"warp_speed": 9}).status_code == 400
    assert httpx.post(f"{control}/config", json={"start_loaded": "sd15"}).status_code == 400


def test_control_api_arms_and_clears_faults_and_shows_requests(sim: SimServer) -> None:
    control = f"{sim.url}/_sim"
    armed = httpx.post(
        f"{control}/fault", json={"route": "/health", "kind": "status_503", "times": 1}
    ).json()
    assert armed["faults"]["/health"]["kind"] == "status_503"
    assert httpx.get(f"{sim.url}/health").status_code == 503
    assert (
        httpx.post(f"{control}/fault", json={"route": "/health", "kind": "explode"}).status_code
        == 400
    )
    httpx.post(f"{control}/fault", json={"route": "/loras", "kind": "html_500"})
    httpx.post(f"{control}/fault", json={"route": "/loras", "kind": None})
    assert httpx.get(f"{sim.url}/loras").status_code == 200  # disarmed
    httpx.post(f"{control}/fault", json={"route": "/models", "kind": "html_500"})
    assert httpx.delete(f"{control}/fault").json()["faults"] == {}
    assert httpx.get(f"{sim.url}/models").status_code == 200
    assert httpx.get(f"{sim.url}/loras").status_code == 200
    logged = httpx.get(f"{control}/requests").json()
    assert [entry["path"] for entry in logged] == ["/health", "/loras", "/models", "/loras"]


# --- fixtures and the CLI ------------------------------------------------------------


def test_hanging_port_accepts_but_never_answers(hanging_port: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{hanging_port}/health", timeout=0.2)


def test_closed_port_refuses(closed_port_url: str) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{closed_port_url}/health", timeout=1)


def start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pixery_widgets.sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "http://" in line, line
    return process, line.split()[-1]


def test_cli_serves_with_its_flags_until_terminated() -> None:
    process, url = start_cli(
        "--gen-seconds",
        "0",
        "--missing",
        "pony",
        "--no-loras",
        "--no-model-loaded",
        "--fault",
        "/models=html_500:1",
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert health["status"] == "no_model_loaded"
        assert httpx.get(f"{url}/loras").json() == {"loras": []}
        assert httpx.get(f"{url}/models").status_code == 500
        assert httpx.get(f"{url}/models").json()["models"]["pony"]["downloaded"] is False
        assert (
            httpx.post(f"{url}/generate", json={"prompt": "x", "model": "pony"}).status_code == 503
        )
    finally:
        process.terminate()
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert process.wait(5) in (0, -signal.SIGTERM)


def test_cli_exits_by_itself_when_idle() -> None:
    process, _ = start_cli("--idle-timeout-minutes", "0.01", "--exit-when-idle")
    try:
        assert process.wait(5) == 0
    finally:
        process.kill()
