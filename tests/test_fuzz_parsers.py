"""Every parser of an answer, fed arbitrary and damaged answers: only package errors escape.

A back end on a rented box, behind a proxy, or half way through an upgrade can
answer anything. Whatever it sends, the user must get a ``PixeryError`` that
says so (or a usable result), never a ``KeyError``, ``TypeError`` or
``OverflowError`` from deep inside the package.

Profiles: ``ci`` (default, a few thousand examples in all, derandomized so CI is
repeatable) and ``long`` (``make fuzz``: random and many more examples).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from unittest import mock

import pytest
import respx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixery_widgets.core.config import Secret, Settings
from pixery_widgets.core.errors import ImageDecodeError, PixeryError
from pixery_widgets.core.images import check_image_bytes, decode_base64_image
from pixery_widgets.core.types import Generation, GenerationRequest
from pixery_widgets.providers import (
    _base,
    _cloud_errors,
    _cloud_images,
    _cloud_send,
    _selfhosted_answers,
    fal,
    gemini,
    openai,
    selfhosted,
)

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

T = TypeVar("T")

# -- values ----------------------------------------------------------------------------------

_LOOP = asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """One loop for every example: a new loop per example would dominate the run time."""
    return _LOOP.run_until_complete(coro)


def png(size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = png()
PNG_B64 = base64.b64encode(PNG).decode("ascii")

#: Numbers a JSON parser really produces, edge cases first: json.loads gives huge
#: integers and (from NaN/Infinity literals) non-finite floats.
EDGE_NUMBERS = (0, -1, 1, 2**31, 2**63, 10**400, -(10**400), math.nan, math.inf, -math.inf, 1e308)
numbers = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=30), st.sampled_from(("", "abc", "1s"))
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with some keys dropped, some values replaced by anything, some kept."""
    if not isinstance(value, (dict, list)) or depth > 6:
        return draw(st.one_of(st.just(value), json_values)) if depth else value
    if isinstance(value, list):
        items = [draw(_mutated_item(v, depth)) for v in value]
        if items and draw(st.integers(0, 3)) == 0:
            items = items[: draw(st.integers(0, len(items)))]
        return items
    out: dict[str, Any] = {}
    for key, item in value.items():
        how = draw(st.integers(0, 7))
        if how == 0:
            continue  # dropped
        out[key] = draw(json_values) if how == 1 else draw(_mutated_item(item, depth))
    if draw(st.integers(0, 3)) == 0:
        out.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return out


def _mutated_item(value: Any, depth: int) -> st.SearchStrategy[Any]:
    """Mostly kept (so deeper fields are reached), sometimes damaged further down."""
    if isinstance(value, (dict, list)):
        return mutated(value, depth + 1)
    return st.one_of(st.just(value), st.just(value), st.just(value), numbers, scalars)


def answers(valid: Any) -> st.SearchStrategy[Any]:
    """Anything at all, or a damaged version of a valid answer."""
    return st.one_of(json_values, mutated(valid))


@st.composite
def damaged_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` cut short, with bytes flipped, or replaced by random bytes."""
    how = draw(st.sampled_from(("cut", "flip", "random", "whole")))
    if how == "random":
        return draw(st.binary(max_size=200))
    if how == "whole":
        return valid
    if how == "cut":
        return valid[: draw(st.integers(0, len(valid)))]
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def body_bytes(valid: Any) -> st.SearchStrategy[bytes]:
    """What may arrive as a body: damaged JSON text of a (possibly mutated) answer, or bytes."""
    encoded = answers(valid).map(lambda v: json.dumps(v).encode())
    return st.one_of(encoded, damaged_bytes(json.dumps(valid).encode()), st.binary(max_size=120))


def only_package_errors(call: Callable[[], T]) -> T | None:
    """Run ``call``; a package error is a correct outcome, anything else fails the test."""
    try:
        return call()
    except PixeryError as exc:
        assert str(exc).strip(), "a package error must say what happened"
        return None


# -- the self-hosted server's answers -----------------------------------------------------

HEALTH = {
    "status": "healthy",
    "current_model": "animagine",
    "available_models": ["animagine", "pony", "noobai"],
    "ip_adapter_loaded": True,
    "cuda_available": True,
    "gpu_name": "RTX 4090",
    "vram_allocated_gb": 6.9,
    "idle_seconds": 12.5,
    "idle_timeout_minutes": 60,
}
MODELS = {
    "models": {
        "animagine": {
            "description": "Animagine XL 4.0",
            "downloaded": True,
            "loaded": True,
            "default_cfg": 5.0,
            "default_steps": 28,
        },
        "pony": {"description": "Pony", "downloaded": False, "loaded": False},
    },
    "current": "animagine",
}
LORAS = {"loras": ["detail_tweaker", "pixel_art"]}
GENERATE = {
    "image": PNG_B64,
    "seed": 7,
    "parameters": {"prompt": "p", "steps": 28, "cfg_scale": 5.0, "width": 8, "height": 6},
}
ERROR_422 = {"detail": [{"loc": ["body", "width"], "msg": "too big", "type": "less_than"}]}


@given(answers(HEALTH))
@example({**HEALTH, "vram_allocated_gb": 10**400, "idle_seconds": math.nan})
@example({**HEALTH, "idle_timeout_minutes": math.inf, "available_models": "animagine"})
def test_parse_health_gives_health_or_a_package_error(data):
    health = only_package_errors(lambda: _selfhosted_answers.parse_health(data))
    if health is not None:
        assert all(isinstance(m, str) for m in health.available_models)
        for value in (health.vram_allocated_gb, health.idle_seconds, health.idle_timeout_minutes):
            assert value is None or math.isfinite(value)
        left = health.seconds_until_shutdown
        assert left is None or math.isfinite(left)


@given(answers(MODELS))
@example({"models": {"pony": {"default_cfg": 10**400, "default_steps": 2.5}}, "current": 3})
def test_parse_models_gives_models_or_a_package_error(data):
    models = only_package_errors(lambda: _selfhosted_answers.parse_models(data))
    if models is not None:
        for name, info in models.items():
            assert isinstance(name, str) and info.name == name
            assert info.default_cfg is None or math.isfinite(info.default_cfg)


@given(answers(LORAS))
def test_parse_loras_gives_names_or_a_package_error(data):
    loras = only_package_errors(lambda: _selfhosted_answers.parse_loras(data))
    assert loras is None or all(isinstance(n, str) for n in loras)


@given(answers(GENERATE))
def test_parse_generate_gives_a_checked_image_or_a_package_error(data):
    result = only_package_errors(lambda: _selfhosted_answers.parse_generate(data))
    if result is not None:
        image, seed, params = result
        assert Image.open(io.BytesIO(image)).size == (8, 6)
        assert seed is None or isinstance(seed, int)
        assert isinstance(params, dict)


def _outcome(call: Callable[[], T]) -> Any:
    """The result, or the package error's class and words (anything else fails the test)."""
    try:
        return call()
    except PixeryError as exc:
        return type(exc), str(exc)


@given(body_bytes(GENERATE))
@example(json.dumps(GENERATE, separators=(",", ":")).encode())
@example(json.dumps({**GENERATE, "image": "data:image/png;base64," + PNG_B64}).encode())
def test_the_generate_answer_read_from_its_bytes_gives_what_its_json_gives(body):
    """The quick way (base64 decoded straight from the bytes) never changes the outcome."""
    where = "Your server at http://127.0.0.1:8000 (/generate)"
    quick = _outcome(
        lambda: _selfhosted_answers.parse_generate(
            _selfhosted_answers.read_generate_answer(body, where=where)
        )
    )
    plain = _outcome(
        lambda: _selfhosted_answers.parse_generate(_base.parse_json(body, where=where))
    )
    assert quick == plain


def pillow_opens(raw: bytes) -> bool:
    """Whether Pillow takes ``raw`` for an image (some formats, TGA, have no magic bytes)."""
    try:
        with Image.open(io.BytesIO(raw)):
            return True
    except Exception:
        return False


def base64_of_an_image(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return pillow_opens(base64.b64decode(value, validate=True))
    except ValueError:
        return False


@given(
    st.one_of(st.text(max_size=60), json_values).filter(lambda v: not base64_of_an_image(v)),
    st.binary(max_size=60).filter(lambda raw: not pillow_opens(raw)),
)
def test_decode_base64_image_refuses_anything_but_a_real_image(text, raw):
    for value in (text, base64.b64encode(raw).decode(), f"data:image/png;base64,{text}"):
        with pytest.raises(ImageDecodeError) as refused:
            decode_base64_image(value, provider="test")
        assert str(refused.value).strip(), "a package error must say what happened"


@given(damaged_bytes(PNG))
def test_check_image_bytes_on_damaged_pngs_raises_only_image_errors(raw):
    size = only_package_errors(lambda: check_image_bytes(raw, provider="test"))
    assert size is None or size == (8, 6)


@given(st.integers(100, 599), body_bytes(ERROR_422))
def test_an_error_answer_of_any_shape_becomes_a_server_error_in_words(status, body):
    where = "Your server at http://127.0.0.1:8000"
    error = selfhosted.error_from_status(status, body, where)
    assert error.status_code == status and str(error).startswith(where)


@given(body_bytes(GENERATE))
def test_parse_json_gives_json_or_says_it_was_not(body):
    only_package_errors(lambda: _base.parse_json(body, where="Your server"))


def test_absurdly_nested_json_is_a_bad_answer_not_a_recursion_error():
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(PixeryError, match="JSON"):
        _base.parse_json(deep, where="Your server")
    assert _cloud_errors.parse_error(deep).message is None
    assert isinstance(selfhosted.error_from_status(500, deep, "Your server"), PixeryError)


# -- the cloud providers' answers -----------------------------------------------------------

KEYS = Settings(keys={p: Secret(f"{p}-fuzz-key") for p in ("gemini", "openai", "fal")})
NO_WAIT = _cloud_send.RetryPolicy(jitter=0.0, sleep=lambda _d: asyncio.sleep(0))

GEMINI_OK = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Here it is"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "promptFeedback": {"blockReason": "SAFETY"},
    "usageMetadata": {
        "promptTokenCount": 10,
        "candidatesTokenCount": 1290,
        "thoughtsTokenCount": 5,
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
    },
}
OPENAI_OK = {
    "created": 1,
    "data": [{"b64_json": PNG_B64, "revised_prompt": "a cat"}],
    "usage": {
        "input_tokens": 20,
        "output_tokens": 1056,
        "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
    },
}
OPENAI_URL_OK = {"data": [{"url": "https://example.invalid/img.png"}]}
FAL_SUBMIT = {
    "request_id": "req-1",
    "status_url": "https://queue.fal.run/fal-ai/flux/requests/req-1/status",
    "response_url": "https://queue.fal.run/fal-ai/flux/requests/req-1",
    "cancel_url": "https://queue.fal.run/fal-ai/flux/requests/req-1/cancel",
}
FAL_STATUS = {"status": "IN_QUEUE", "queue_position": 2}
FAL_RESULT = {
    "images": [{"url": f"data:image/png;base64,{PNG_B64}", "width": 8, "height": 6}],
    "seed": 42,
    "has_nsfw_concepts": [False],
}
CLOUD_ERROR = {
    "error": {
        "code": 429,
        "message": "slow down",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"reason": "RATE_LIMIT_EXCEEDED", "retryDelay": "37s"}],
    }
}


def request_for(model: str, provider: str) -> GenerationRequest:
    return GenerationRequest(prompt="a cat", model=model, provider=provider, seed=3)


async def _downloaded(raw: bytes, *_args: Any, **_kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, raw


def check_generation(result: Generation | None) -> None:
    if result is not None:
        assert Image.open(io.BytesIO(result.png_bytes)).size[0] > 0
        assert result.cost_usd is None or math.isfinite(result.cost_usd)
        json.dumps(result.params, default=str)


def answered(data: Any, download: bytes = PNG) -> mock._patch[Any]:
    """Patch the HTTP layer: every JSON call answers ``data``, every download ``download``."""

    async def call_json(*_args: Any, **_kwargs: Any) -> Any:
        return data

    return mock.patch.multiple(
        _cloud_send,
        call_json=call_json,
        call=lambda *a, **k: _downloaded(download, *a, **k),
    )


@given(answers(GEMINI_OK))
@example(GEMINI_OK)
def test_gemini_answers_give_an_image_or_a_package_error(data):
    provider = gemini.GeminiProvider(retry=NO_WAIT)
    with answered(data):
        result = only_package_errors(
            lambda: run(provider.generate(request_for("gemini-flash", "gemini"), KEYS))
        )
    if data == GEMINI_OK:
        assert result is not None, "the valid answer must give an image"
    check_generation(result)


@given(st.sampled_from(sorted(gemini.TOKEN_PRICES)), answers(GEMINI_OK["usageMetadata"]))
def test_gemini_cost_is_finite_or_unknown(api_id, usage):
    cost = gemini.gemini_cost(api_id, usage)
    assert cost is None or (math.isfinite(cost) and cost >= 0)


@given(st.one_of(answers(OPENAI_OK), answers(OPENAI_URL_OK)), damaged_bytes(PNG))
@example({"data": [{"url": -1}]}, PNG)
@example({"data": [{"url": "https://[::1"}]}, PNG)
@example({"data": [{"b64_json": 42}]}, PNG)
@example(OPENAI_OK, PNG)
@example(OPENAI_URL_OK, PNG)
def test_openai_answers_give_an_image_or_a_package_error(data, download):
    provider = openai.OpenAIProvider(retry=NO_WAIT)
    with answered(data, download):
        result = only_package_errors(
            lambda: run(provider.generate(request_for("gpt-image", "openai"), KEYS))
        )
    if (data, download) in ((OPENAI_OK, PNG), (OPENAI_URL_OK, PNG)):
        assert result is not None, "a valid answer must give an image"
    check_generation(result)


@given(
    st.sampled_from(("gpt-image-1", "dall-e-3")),
    st.sampled_from(("1024x1024", "1024x1536")),
    json_values,
    answers(OPENAI_OK["usage"]),
)
def test_openai_cost_is_finite_or_unknown(api_id, size, quality, usage):
    cost = openai.openai_cost(api_id, size, quality, usage)
    assert cost is None or (math.isfinite(cost) and cost >= 0)


FAL_RESULT_URL = {**FAL_RESULT, "images": [{"url": "https://v3.fal.media/files/out.png"}]}


@given(answers(FAL_SUBMIT), answers(FAL_STATUS), answers(FAL_RESULT), damaged_bytes(PNG))
@example(FAL_SUBMIT, FAL_STATUS, FAL_RESULT, PNG)
@example(FAL_SUBMIT, FAL_STATUS, FAL_RESULT_URL, PNG)
def test_fal_queue_answers_give_an_image_or_a_package_error(submitted, status, result, download):
    """Submission, one status answer (then COMPLETED), the result, then the download."""
    given_answers: list[Any] = []

    async def call_json(_service: Any, method: str, url: str, **_kwargs: Any) -> Any:
        if not given_answers:
            answer = submitted
        elif len(given_answers) == 1:
            answer = status
        elif isinstance(given_answers[-1], dict) and given_answers[-1].get("status") == "COMPLETED":
            answer = result
        else:
            answer = {"status": "COMPLETED"}
        given_answers.append(answer)
        return answer

    async def no_cancel(*_args: Any, **_kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"{}"

    provider = fal.FalProvider(retry=NO_WAIT)
    with (
        mock.patch.multiple(
            _cloud_send, call_json=call_json, call=lambda *a, **k: _downloaded(download, *a, **k)
        ),
        mock.patch.object(fal, "send", no_cancel),
    ):
        generation = only_package_errors(
            lambda: run(provider.generate(request_for("flux-schnell", "fal"), KEYS))
        )
    valid = [(FAL_SUBMIT, FAL_STATUS, r, PNG) for r in (FAL_RESULT, FAL_RESULT_URL)]
    if (submitted, status, result, download) in valid:
        assert generation is not None, "valid answers must give an image"
    check_generation(generation)


url_texts = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda s, rest: s + rest,
        st.sampled_from(("http://", "https://", "data:")),
        st.text(max_size=40),
    ),
    st.sampled_from(
        (
            "https://[::1",
            "https://a:b:c/",
            "https://x/\x00",
            "http://",
            f"data:image/png;base64,{PNG_B64}",
        )
    ),
)


@given(st.one_of(url_texts, json_values))
def test_an_image_address_of_any_form_is_fetched_or_refused_in_words(url):
    """The real request path, answered by a catch-all mock (nothing leaves the machine)."""
    with respx.mock(assert_all_called=False) as router:
        router.route().respond(200, content=PNG)
        only_package_errors(lambda: run(_cloud_images.fetch_image(fal.FAL, url, settings=KEYS)))


@given(
    body_bytes(CLOUD_ERROR),
    st.dictionaries(
        st.sampled_from(("Retry-After", "retry-after", "x")), st.text(max_size=40), max_size=2
    ),
)
def test_cloud_error_bodies_of_any_shape_are_read_with_a_sane_retry_delay(body, headers):
    info = _cloud_errors.parse_error(body)
    assert info.message is None or isinstance(info.message, str)
    assert info.retry_delay_s is None or (
        math.isfinite(info.retry_delay_s) and info.retry_delay_s >= 0
    )
    delay = _cloud_errors._retry_after(headers, info)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@given(
    st.sampled_from((gemini.GEMINI, openai.OPENAI, fal.FAL)),
    st.integers(100, 599),
    body_bytes(CLOUD_ERROR),
)
def test_a_cloud_error_answer_of_any_shape_becomes_a_server_error_in_words(service, status, body):
    error = _cloud_errors.error_for_status(service, status, body, KEYS)
    assert error.status_code == status and service.label in str(error)
