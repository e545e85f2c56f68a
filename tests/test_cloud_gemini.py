"""Gemini: the request body, reading the image part, refusals, cost, and the public API."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest
from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import (
    ENV,
    KEYS,
    NOT_AN_IMAGE_B64,
    PNG,
    PNG_B64,
    b64,
    gemini_error,
    gemini_image,
    gemini_refusal,
    gemini_url,
    gemini_usage,
    hermetic_settings,
    image_bytes,
    run,
)

import pixery_widgets as px
from pixery_widgets import (
    AuthenticationError,
    ContentRefusedError,
    ImageDecodeError,
    InvalidRequestError,
    MissingAPIKeyError,
)
from pixery_widgets.providers.gemini import GeminiProvider, gemini_cost
from pixery_widgets.session.validation import build_request


def generate(settings, model="gemini-flash", **fields):
    request = build_request("a red fox in snow", model, **fields)
    return run(GeminiProvider().generate(request, settings))


def sent_body(route) -> dict:
    return json.loads(route.calls.last.request.content)


def test_the_body_has_the_prompt_and_asks_for_text_and_image(mock, settings):
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    g = generate(settings)
    body = sent_body(route)
    assert body["contents"] == [{"parts": [{"text": "a red fox in snow"}]}]
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}
    assert g.png_bytes == PNG and g.seed is None


def test_the_pro_model_posts_to_its_own_api_id(mock, settings):
    route = mock.post(gemini_url("gemini-3-pro-image-preview")).respond(200, json=gemini_image())
    g = generate(settings, model="nano-banana-pro")
    assert route.called and g.model == "gemini-pro"
    assert g.params["api_id"] == "gemini-3-pro-image-preview"


def test_references_go_as_inline_data_parts_before_the_text(mock, settings):
    refs = [
        image_bytes(fmt="PNG"),
        image_bytes(fmt="JPEG"),
        image_bytes(fmt="WEBP"),
        image_bytes(fmt="GIF"),
    ]
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    g = generate(settings, reference=refs)
    parts = sent_body(route)["contents"][0]["parts"]
    assert [p.get("inlineData", {}).get("mimeType") for p in parts] == [
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/png",  # a GIF is converted to PNG first
        None,
    ]
    assert parts[-1] == {"text": "a red fox in snow"}
    assert base64.b64decode(parts[0]["inlineData"]["data"]) == refs[0]
    assert base64.b64decode(parts[1]["inlineData"]["data"]) == refs[1]
    assert g.params["references"] == 4 and g.params["reference_hash"]


def test_ten_references_are_accepted_and_eleven_refused_before_sending(mock, settings):
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    generate(settings, reference=[PNG] * 10)
    assert len(sent_body(route)["contents"][0]["parts"]) == 11
    with pytest.raises(InvalidRequestError, match="at most 10"):
        build_request("x", "gemini-flash", reference=[PNG] * 11)


@pytest.mark.parametrize(
    ("size", "ratio"),
    [((1216, 832), "3:2"), ((832, 1216), "2:3"), ((1344, 768), "16:9"), ((768, 1344), "9:16")],
)
def test_a_non_square_size_asks_for_the_nearest_aspect_ratio(mock, settings, size, ratio):
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    g = generate(settings, width=size[0], height=size[1])
    assert sent_body(route)["generationConfig"]["imageConfig"] == {"aspectRatio": ratio}
    assert g.params["aspect_ratio"] == ratio
    assert (g.params["requested_width"], g.params["requested_height"]) == size


def test_extras_set_aspect_ratio_and_image_size_and_unknown_extras_are_refused(mock, settings):
    route = mock.post(gemini_url("gemini-3-pro-image-preview")).respond(200, json=gemini_image())
    generate(settings, model="gemini-pro", extra={"aspect_ratio": "21:9", "image_size": "2K"})
    config = sent_body(route)["generationConfig"]["imageConfig"]
    assert config == {"aspectRatio": "21:9", "imageSize": "2K"}
    with pytest.raises(InvalidRequestError, match="does not take quality"):
        GeminiProvider().validate(build_request("x", "gemini-flash", extra={"quality": "hd"}))


def test_the_image_part_is_found_after_text_parts_in_either_spelling(mock, settings):
    mock.post(gemini_url()).mock(
        side_effect=[
            httpx.Response(200, json=gemini_image(text="Here is your fox!")),
            httpx.Response(200, json=gemini_image(snake=True)),
        ]
    )
    first = generate(settings)
    assert first.png_bytes == PNG and first.params["model_text"] == "Here is your fox!"
    assert generate(settings).png_bytes == PNG


def test_a_thought_image_is_skipped_for_the_final_one(mock, settings):
    final = image_bytes(80, 40)
    answer = gemini_image(b64(final))
    answer["candidates"][0]["content"]["parts"].insert(
        0, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}, "thought": True}
    )
    mock.post(gemini_url()).respond(200, json=answer)
    g = generate(settings)
    assert g.png_bytes == final and (g.params["width"], g.params["height"]) == (80, 40)


def test_a_refusal_reports_the_models_words_and_finish_reason(mock, settings):
    words = "I can't create images of that. Try a different description."
    mock.post(gemini_url()).respond(
        200, json=gemini_refusal(text=words, finish_reason="IMAGE_SAFETY")
    )
    with pytest.raises(ContentRefusedError) as info:
        generate(settings)
    err = info.value
    assert words in str(err) and "IMAGE_SAFETY" in str(err)
    assert err.status_code == 200 and err.provider == "gemini"
    assert err.detail["finish_reason"] == "IMAGE_SAFETY"


def test_a_blocked_prompt_reports_the_block_reason(mock, settings):
    mock.post(gemini_url()).respond(200, json=gemini_refusal(block_reason="PROHIBITED_CONTENT"))
    with pytest.raises(ContentRefusedError, match="prompt blocked: PROHIBITED_CONTENT"):
        generate(settings)


def test_an_answer_with_only_text_is_a_refusal(mock, settings):
    mock.post(gemini_url()).respond(
        200, json=gemini_refusal(text="Sure! A fox.", finish_reason="STOP")
    )
    with pytest.raises(ContentRefusedError, match=re.escape('The model said: "Sure! A fox."')):
        generate(settings)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("!!!not base64!!!", "The image in Gemini's answer is not valid base64."),
        (NOT_AN_IMAGE_B64, "The image in Gemini's answer is not a readable image."),
        ("", None),
    ],
)
def test_image_data_that_is_not_an_image_is_an_image_decode_error(mock, settings, data, words):
    answer = gemini_image(data)
    mock.post(gemini_url()).respond(200, json=answer)
    expected = ContentRefusedError if data == "" else ImageDecodeError
    with pytest.raises(expected) as info:
        generate(settings)
    assert info.value.provider == "gemini"
    if words is not None:
        assert str(info.value) == words


def test_an_invalid_key_reported_as_400_is_an_authentication_error(mock, settings):
    """The live API answers a bad key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID."""
    body = gemini_error(
        400,
        "API key not valid. Please pass a valid API key.",
        details=[
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        ],
    )
    mock.post(gemini_url()).respond(400, json=body)
    with pytest.raises(
        AuthenticationError, match=re.escape("API key not valid. Please pass a valid API key.")
    ):
        generate(settings)


def test_a_429_waits_for_the_retry_delay_in_the_body(mock, settings, sleeps):
    """Gemini names the wait in google.rpc.RetryInfo rather than a header."""
    limited = gemini_error(
        429,
        "Resource has been exhausted (e.g. check quota).",
        "RESOURCE_EXHAUSTED",
        details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
    )
    mock.post(gemini_url()).mock(
        side_effect=[httpx.Response(429, json=limited), httpx.Response(200, json=gemini_image())]
    )
    generate(settings)
    assert sleeps.delays == [7.0]


def test_the_cost_comes_from_usage_metadata_when_present(mock, settings):
    mock.post(gemini_url()).mock(
        side_effect=[
            httpx.Response(200, json=gemini_image(usage=gemini_usage(prompt=10, image=1290))),
            httpx.Response(200, json=gemini_image()),
        ]
    )
    with_usage = generate(settings)
    assert with_usage.cost_usd == pytest.approx((10 * 0.30 + 1290 * 30.0) / 1e6)
    assert with_usage.params["usage"]["promptTokenCount"] == 10
    assert generate(settings).cost_usd == 0.039  # no usage: the list price


def test_cost_counts_text_and_thinking_at_the_text_rate():
    usage = {**gemini_usage(prompt=100, image=1120, text=50), "thoughtsTokenCount": 200}
    expected = (100 * 2.0 + 1120 * 120.0 + 250 * 12.0) / 1e6
    assert gemini_cost("gemini-3-pro-image-preview", usage) == pytest.approx(expected)
    assert gemini_cost("gemini-unknown", usage) is None
    assert gemini_cost("gemini-2.5-flash-image", {}) is None


def test_the_public_api_makes_a_gemini_image_end_to_end(mock, tmp_path):
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    settings = hermetic_settings(tmp_path, {"GEMINI_API_KEY": KEYS["gemini"]})
    spent = px.session_ledger.total_usd
    g = run(px.agenerate("a red fox in snow", model="gemini-flash", settings=settings))
    assert isinstance(g, px.Generation) and g.png_bytes == PNG
    assert g.provider == "gemini" and g.cost_usd == 0.039
    assert px.session_ledger.total_usd == pytest.approx(spent + 0.039)
    assert route.calls.last.request.headers["x-goog-api-key"] == KEYS["gemini"]
    assert list((tmp_path / "archive").rglob("*.png"))  # archived, and checked for keys


def test_the_public_api_refuses_without_a_key_and_sends_nothing(mock, no_keys):
    mock.post(gemini_url()).respond(200, json=gemini_image())
    with pytest.raises(MissingAPIKeyError, match="GEMINI_API_KEY"):
        run(px.agenerate("a fox", model="gemini-flash", settings=no_keys))
    assert not mock.calls


def test_the_secondary_key_name_works_too(mock, tmp_path):
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    s = hermetic_settings(tmp_path, {"GEMINI_API_SECRET_KEY": ENV["GEMINI_API_KEY"]})
    generate(s)
    assert route.calls.last.request.headers["x-goog-api-key"] == KEYS["gemini"]
