"""Byte-level answers from the self-hosted server, pinned with respx."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import pytest
import respx
from PIL import Image

from pixery_widgets import (
    BadResponseError,
    ConnectionFailedError,
    ImageDecodeError,
    InvalidRequestError,
    ModelUnavailableError,
    RequestRejectedError,
    ServerError,
    ServerState,
    acheck_selfhosted,
    agenerate,
    load_settings,
)
from pixery_widgets.providers.selfhosted import SelfHostedClient
from pixery_widgets.session.validation import build_request

URL = "http://203.0.113.7:8000"
SENTINELS = {
    "GEMINI_API_KEY": "gm-SENTINEL-1",
    "OPENAI_API_KEY": "sk-SENTINEL-2",
    "FAL_KEY": "fal-SENTINEL-3",
}


def run(coro):
    return asyncio.run(coro)


def png(size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


HEALTH = {
    "status": "healthy",
    "current_model": "animagine",
    "available_models": ["animagine", "pony", "noobai"],
    "ip_adapter_loaded": True,
    "cuda_available": True,
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "vram_allocated_gb": 6.94,
    "idle_seconds": 12.5,
    "idle_timeout_minutes": 60,
}
MODELS = {
    "models": {
        "animagine": {
            "description": "a",
            "downloaded": True,
            "loaded": True,
            "default_cfg": 5.0,
            "default_steps": 28,
        },
        "pony": {
            "description": "p",
            "downloaded": False,
            "loaded": False,
            "default_cfg": 7.0,
            "default_steps": 25,
        },
    },
    "current": "animagine",
}


def generate_answer(**over):
    body = {
        "image": base64.b64encode(png()).decode(),
        "seed": 7,
        "parameters": {
            "prompt": "a cat",
            "negative_prompt": "bad",
            "width": 1024,
            "height": 1024,
            "steps": 28,
            "cfg_scale": 5.0,
            "model": "animagine",
        },
    }
    body.update(over)
    return body


def settings(**env):
    return load_settings({"SELFHOSTED_API_URL": URL, **env})


@respx.mock
def test_health_models_and_loras_are_parsed_with_nullable_fields():
    respx.get(f"{URL}/health").respond(
        json={
            **HEALTH,
            "gpu_name": None,
            "current_model": None,
            "vram_allocated_gb": None,
            "status": "no_model_loaded",
        }
    )
    respx.get(f"{URL}/models").respond(json=MODELS)
    respx.get(f"{URL}/loras").respond(json={"loras": []})
    status = run(acheck_selfhosted(settings()))
    assert status.state is ServerState.HEALTHY
    assert status.health.gpu_name is None and status.health.current_model is None
    assert status.models["pony"].downloaded is False
    assert status.models["animagine"].default_steps == 28
    assert status.loras == ()


@respx.mock
def test_unknown_extra_fields_in_health_are_kept_not_refused():
    respx.get(f"{URL}/health").respond(json={**HEALTH, "queue_depth": 3, "version": "2.1"})
    respx.get(f"{URL}/models").respond(json=MODELS)
    respx.get(f"{URL}/loras").respond(json={"loras": ["a"]})
    status = run(acheck_selfhosted(settings()))
    assert status.state is ServerState.HEALTHY
    assert status.health.extra == {"queue_depth": 3, "version": "2.1"}


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(200, text="<html>proxy login</html>"), "bad answer (not JSON)"),
        (httpx.Response(200, content=b'{"status": "heal'), "bad answer (not JSON)"),
        (httpx.Response(502, text="<html>Bad gateway</html>"), "error answer (HTTP 502)"),
        (httpx.Response(500, json={"detail": "CUDA error"}), "error answer (HTTP 500)"),
        (httpx.Response(200, json={"status": "healthy"}), "bad answer"),
        (httpx.Response(200, json=["not", "an", "object"]), "bad answer"),
    ],
)
@respx.mock
def test_a_health_answer_that_is_not_usable_means_offline_with_the_reason(response, reason):
    respx.get(f"{URL}/health").mock(return_value=response)
    status = run(acheck_selfhosted(settings()))
    assert status.state is ServerState.OFFLINE
    assert status.reason.startswith(reason)


@respx.mock
def test_details_failing_after_a_healthy_health_still_count_as_healthy():
    respx.get(f"{URL}/health").respond(json=HEALTH)
    respx.get(f"{URL}/models").respond(500, text="oops")
    respx.get(f"{URL}/loras").respond(json={"loras": ["x"]})
    status = run(acheck_selfhosted(settings()))
    assert status.state is ServerState.HEALTHY
    assert status.models is None and status.loras == ("x",)


@respx.mock
def test_generate_sends_every_field_and_builds_a_generation():
    route = respx.post(f"{URL}/generate").respond(json=generate_answer())
    ref = png((8, 8))
    g = run(
        agenerate(
            "a cat",
            model="animagine",
            negative_prompt="bad",
            width=832,
            height=1216,
            steps=20,
            cfg_scale=6.5,
            seed=7,
            reference=ref,
            ip_adapter_scale=0.5,
            lora_scale=1.2,
            settings=settings(),
        )
    )
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "prompt": "a cat",
        "negative_prompt": "bad",
        "model": "animagine",
        "width": 832,
        "height": 1216,
        "steps": 20,
        "cfg_scale": 6.5,
        "seed": 7,
        "reference_image": base64.b64encode(ref).decode(),
        "ip_adapter_scale": 0.5,
        "lora_name": None,
        "lora_scale": 1.2,
    }
    assert not body["reference_image"].startswith("data:")
    assert g.seed == 7 and g.model == "animagine" and g.provider == "selfhosted"
    assert g.cost_usd == 0.0 and g.elapsed_s >= 0
    assert g.png_bytes == png() and g.image.size == (32, 32)
    assert g.params["steps"] == 28


@respx.mock
def test_no_cloud_key_or_auth_header_is_ever_sent_to_the_self_hosted_server():
    respx.get(f"{URL}/health").respond(json=HEALTH)
    respx.get(f"{URL}/models").respond(json=MODELS)
    respx.get(f"{URL}/loras").respond(json={"loras": ["detail_tweaker"]})
    respx.post(f"{URL}/generate").respond(json=generate_answer())
    s = settings(**SENTINELS)
    run(acheck_selfhosted(s))
    run(agenerate("a cat", model="animagine", lora="detail_tweaker", settings=s))
    assert respx.calls.call_count == 5
    for call in respx.calls:
        raw = bytes(call.request.content) + str(call.request.headers).encode()
        for secret in SENTINELS.values():
            assert secret.encode() not in raw
        for header in ("authorization", "x-goog-api-key", "x-api-key"):
            assert header not in call.request.headers


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (generate_answer(image="!!!not base64!!!"), ImageDecodeError, "not valid base64"),
        (
            generate_answer(image=base64.b64encode(b"hello, not an image").decode()),
            ImageDecodeError,
            "not a readable image",
        ),
        (generate_answer(image=None), ImageDecodeError, "no image data"),
        (
            {k: v for k, v in generate_answer().items() if k != "image"},
            ImageDecodeError,
            "no image data",
        ),
        (generate_answer(seed="abc"), BadResponseError, "seed that is not a number"),
        ([], BadResponseError, "not a JSON object"),
    ],
)
@respx.mock
def test_malformed_generate_answers_become_clear_errors(answer, error, words):
    respx.post(f"{URL}/generate").respond(json=answer)
    with pytest.raises(error, match=words):
        run(agenerate("a cat", settings=settings()))


@respx.mock
def test_a_decompression_bomb_is_refused_without_decoding_it():
    # A valid PNG header claiming 30000×30000 pixels: refused on its declared size.
    bomb = io.BytesIO()
    Image.new("1", (30000, 30000)).save(bomb, format="PNG")
    respx.post(f"{URL}/generate").respond(
        json=generate_answer(image=base64.b64encode(bomb.getvalue()).decode())
    )
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        run(agenerate("a cat", settings=settings()))


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            400,
            {"detail": "Unknown model 'x'. Available: animagine, pony, noobai"},
            RequestRejectedError,
            "Available: animagine, pony, noobai",
        ),
        (
            503,
            {"detail": "Model 'pony' is not downloaded"},
            ModelUnavailableError,
            "Model 'pony' is not downloaded",
        ),
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "width"],
                        "msg": "Input should be less than or equal to 1536",
                        "type": "less_than_equal",
                    }
                ]
            },
            RequestRejectedError,
            "width: Input should be less than or equal to 1536",
        ),
        (
            500,
            "<html><body>Internal Server Error</body></html>",
            ServerError,
            "HTTP 500 with an HTML page",
        ),
    ],
)
@respx.mock
def test_server_errors_carry_the_servers_own_words(status, body, error, words):
    kwargs = {"json": body} if isinstance(body, dict) else {"text": body}
    respx.post(f"{URL}/generate").respond(status, **kwargs)
    with pytest.raises(error, match=words) as info:
        run(agenerate("a cat", settings=settings()))
    assert info.value.status_code == status


@respx.mock
def test_a_connection_dropped_mid_answer_is_reported_in_words():
    respx.post(f"{URL}/generate").mock(side_effect=httpx.RemoteProtocolError("peer closed"))
    with pytest.raises(ConnectionFailedError, match="dropped the connection"):
        run(agenerate("a cat", settings=settings()))


@respx.mock
def test_switch_model_posts_the_model_name():
    route = respx.post(f"{URL}/switch-model").respond(json={"status": "ok", "model": "pony"})
    assert run(SelfHostedClient(URL).switch_model("pony")) == "pony"
    assert json.loads(route.calls.last.request.content) == {"model": "pony"}


@respx.mock
def test_an_answer_larger_than_the_limit_is_refused():
    from pixery_widgets.providers import _base

    respx.post(f"{URL}/generate").respond(content=b"x" * 4096)
    original = _base.MAX_RESPONSE_BYTES
    try:
        _base.MAX_RESPONSE_BYTES = 1024
        with pytest.raises(BadResponseError, match="larger than"):
            run(_base.send("POST", f"{URL}/generate", where="Your server", timeout=5, limit=1024))
    finally:
        _base.MAX_RESPONSE_BYTES = original


def test_the_request_builder_refuses_before_any_request():
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{URL}/generate")
        with pytest.raises(InvalidRequestError, match="between 512 and 1536"):
            run(agenerate("a cat", width=4000, settings=settings()))
        assert not route.called
    assert build_request("a cat", "animagine").model == "animagine"
