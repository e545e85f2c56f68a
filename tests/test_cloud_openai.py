"""OpenAI Images: sizes, per-model options, the base64 answer, refusals and cost."""

from __future__ import annotations

import json

import httpx
import pytest
from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import (
    KEYS,
    NOT_AN_IMAGE_B64,
    OPENAI_URL,
    PNG,
    openai_error,
    openai_image,
    openai_usage,
    run,
)

import pixery_widgets as px
from pixery_widgets import (
    AuthenticationError,
    ContentRefusedError,
    ImageDecodeError,
    InvalidRequestError,
    RateLimitError,
)
from pixery_widgets.providers.openai import OpenAIProvider
from pixery_widgets.session.validation import build_request


def generate(settings, model="gpt-image", **fields):
    request = build_request("a teapot on a cliff", model, **fields)
    return run(OpenAIProvider().generate(request, settings))


def sent_body(route) -> dict:
    return json.loads(route.calls.last.request.content)


def test_gpt_image_body_is_model_prompt_n_and_size(mock, settings):
    route = mock.post(OPENAI_URL).respond(200, json=openai_image())
    g = generate(settings)
    assert sent_body(route) == {
        "model": "gpt-image-1",
        "prompt": "a teapot on a cliff",
        "n": 1,
        "size": "1024x1024",
    }
    assert g.png_bytes == PNG and g.seed is None
    assert g.params["size"] == "1024x1024"


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("gpt-image", (1024, 1024), "1024x1024"),
        ("gpt-image", (832, 1216), "1024x1536"),
        ("gpt-image", (1344, 768), "1536x1024"),
        ("gpt-image", (1100, 1024), "1024x1024"),
        ("dall-e-3", (768, 1344), "1024x1792"),
        ("dall-e-3", (1216, 832), "1792x1024"),
        ("dall-e-3", (1024, 1024), "1024x1024"),
    ],
)
def test_the_requested_size_maps_to_the_nearest_the_model_draws(
    mock, settings, model, size, expected
):
    route = mock.post(OPENAI_URL).respond(200, json=openai_image())
    g = generate(settings, model=model, width=size[0], height=size[1])
    assert sent_body(route)["size"] == expected
    assert (g.params["requested_width"], g.params["requested_height"]) == size


def test_dall_e_3_asks_for_base64_and_passes_quality_and_style(mock, settings):
    route = mock.post(OPENAI_URL).respond(
        200, json=openai_image(revised_prompt="A porcelain teapot on a windswept cliff.")
    )
    g = generate(
        settings,
        model="dall-e-3",
        width=1216,
        height=832,
        extra={"quality": "hd", "style": "natural"},
    )
    body = sent_body(route)
    assert body["model"] == "dall-e-3" and body["response_format"] == "b64_json"
    assert body["quality"] == "hd" and body["style"] == "natural"
    assert g.params["revised_prompt"] == "A porcelain teapot on a windswept cliff."
    assert g.cost_usd == 0.12  # hd, not square


def test_gpt_image_never_sends_response_format(mock, settings):
    route = mock.post(OPENAI_URL).respond(200, json=openai_image())
    generate(settings, extra={"quality": "low"})
    body = sent_body(route)
    assert "response_format" not in body and body["quality"] == "low"


def test_options_a_model_does_not_take_are_refused_before_sending():
    with pytest.raises(InvalidRequestError, match="does not take style"):
        OpenAIProvider().validate(build_request("x", "gpt-image", extra={"style": "vivid"}))
    with pytest.raises(InvalidRequestError, match="does not take background"):
        OpenAIProvider().validate(
            build_request("x", "dall-e-3", extra={"background": "transparent"})
        )


def test_references_are_refused_before_sending():
    with pytest.raises(InvalidRequestError, match="does not take reference images"):
        build_request("x", "gpt-image", reference=PNG)


def test_the_cost_of_gpt_image_comes_from_its_token_usage(mock, settings):
    mock.post(OPENAI_URL).mock(
        side_effect=[
            httpx.Response(200, json=openai_image(usage=openai_usage(text_in=20, out=1056))),
            httpx.Response(200, json=openai_image()),
        ]
    )
    assert generate(settings).cost_usd == pytest.approx((20 * 5.0 + 1056 * 40.0) / 1e6)
    assert generate(settings).cost_usd == 0.04  # no usage: the list price


def test_an_empty_data_list_is_a_refusal(mock, settings):
    mock.post(OPENAI_URL).respond(200, json={"created": 1, "data": []})
    with pytest.raises(ContentRefusedError, match="without an image") as info:
        generate(settings)
    assert info.value.status_code == 200


def test_a_content_policy_rejection_is_a_refusal_in_openais_words(mock, settings):
    words = "Your request was rejected as a result of our safety system."
    mock.post(OPENAI_URL).respond(
        400, json=openai_error(words, "image_generation_user_error", "content_policy_violation")
    )
    with pytest.raises(ContentRefusedError) as info:
        generate(settings)
    assert words in str(info.value) and info.value.status_code == 400


def test_a_wrong_key_echoed_partly_masked_is_not_shown(mock, settings):
    words = "Incorrect API key provided: sk-SENTI*****************cdef. You can find your API key at https://platform.openai.com/account/api-keys."
    mock.post(OPENAI_URL).respond(401, json=openai_error(words, code="invalid_api_key"))
    with pytest.raises(AuthenticationError) as info:
        generate(settings)
    assert "Incorrect API key provided: ***." in str(info.value)
    assert "cdef" not in str(info.value)


def test_an_exhausted_quota_is_not_retried(mock, settings, sleeps):
    words = "You exceeded your current quota, please check your plan and billing details."
    route = mock.post(OPENAI_URL).respond(
        429, json=openai_error(words, "insufficient_quota", "insufficient_quota")
    )
    with pytest.raises(RateLimitError, match="quota or billing") as info:
        generate(settings)
    assert words in str(info.value)
    assert route.call_count == 1 and sleeps.delays == []


@pytest.mark.parametrize("data", ["@@@not-base64@@@", NOT_AN_IMAGE_B64])
def test_b64_json_that_is_not_an_image_is_an_image_decode_error(mock, settings, data):
    mock.post(OPENAI_URL).respond(200, json=openai_image(data))
    with pytest.raises(ImageDecodeError) as info:
        generate(settings)
    assert info.value.provider == "openai"


def test_a_url_answer_is_downloaded_without_the_key(mock, settings):
    image_url = "https://oaidalleapiprodscus.blob.core.windows.net/private/img.png?sig=abc"
    mock.post(OPENAI_URL).respond(200, json={"created": 1, "data": [{"url": image_url}]})
    download = mock.get(image_url).respond(200, content=PNG)
    g = generate(settings, model="dall-e-3")
    assert g.png_bytes == PNG
    assert "authorization" not in download.calls.last.request.headers


def test_the_public_api_makes_an_openai_image(mock, settings):
    route = mock.post(OPENAI_URL).respond(200, json=openai_image())
    g = run(px.agenerate("a teapot", model="dall-e-3", settings=settings, quality="hd"))
    assert g.provider == "openai" and g.model == "dall-e-3"
    assert sent_body(route)["quality"] == "hd"
    assert route.calls.last.request.headers["authorization"] == "Bearer " + KEYS["openai"]
