"""What every cloud provider does the same way: keys, retries, error mapping, secrecy.

Each behaviour runs against Gemini, OpenAI and fal through respx with the
documented answer shapes; nothing touches the network or sleeps.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import (
    KEYS,
    OPENAI_URL,
    assert_clean,
    fal_error,
    fal_submit,
    gemini_error,
    gemini_image,
    gemini_url,
    mock_fal_success,
    openai_error,
    openai_image,
    run,
)

import pixery_widgets as px
from pixery_widgets import (
    AuthenticationError,
    BadResponseError,
    ConnectionFailedError,
    GenerationRequest,
    InvalidRequestError,
    MissingAPIKeyError,
    RateLimitError,
    RequestRejectedError,
    ServerError,
    ServerTimeoutError,
)
from pixery_widgets.providers import _cloud, _cloud_errors, _cloud_images, _cloud_send, get_provider
from pixery_widgets.providers.fal import FalProvider
from pixery_widgets.providers.gemini import GeminiProvider
from pixery_widgets.providers.openai import OpenAIProvider
from pixery_widgets.session.validation import build_request


@dataclass(frozen=True)
class Case:
    """One provider: how its first request looks, succeeds and fails."""

    name: str
    model: str
    factory: Callable[[], Any]
    method: str
    url: str
    ok: Callable[[], httpx.Response]
    error: Callable[[int, str], httpx.Response]
    rest: Callable[[Any], None] = lambda router: None

    def request(self):
        return build_request("a lighthouse at dusk", self.model)

    def generate(self, settings):
        return run(self.factory().generate(self.request(), settings))


FAL_API = "fal-ai/flux/schnell"

CASES = [
    Case(
        "gemini",
        "gemini-flash",
        GeminiProvider,
        "POST",
        gemini_url(),
        lambda: httpx.Response(200, json=gemini_image()),
        lambda status, msg: httpx.Response(status, json=gemini_error(status, msg)),
    ),
    Case(
        "openai",
        "gpt-image",
        OpenAIProvider,
        "POST",
        OPENAI_URL,
        lambda: httpx.Response(200, json=openai_image()),
        lambda status, msg: httpx.Response(status, json=openai_error(msg)),
    ),
    Case(
        "fal",
        "flux-schnell",
        FalProvider,
        "POST",
        f"https://queue.fal.run/{FAL_API}",
        lambda: httpx.Response(200, json=fal_submit(FAL_API)),
        lambda status, msg: httpx.Response(status, json=fal_error(msg)),
        lambda router: mock_fal_success(router, FAL_API),
    ),
]
IDS = [c.name for c in CASES]

cases = pytest.mark.parametrize("case", CASES, ids=IDS)


def first_route(router, case: Case, *side_effect):
    route = router.route(method=case.method, url=case.url)
    route.mock(side_effect=list(side_effect))
    case.rest(router)
    return route


@cases
def test_a_success_returns_a_generation_with_the_image(case, mock, settings):
    first_route(mock, case, case.ok())
    g = case.generate(settings)
    assert g.png_bytes.startswith(b"\x89PNG")
    assert g.provider == case.name and g.model == case.model
    assert (g.params["width"], g.params["height"]) == (64, 48)  # the size actually drawn
    assert g.cost_usd > 0
    assert g.elapsed_s >= 0
    assert g.request is not None and g.request.prompt == "a lighthouse at dusk"


@cases
def test_a_missing_key_is_refused_before_any_request(case, mock, no_keys):
    first_route(mock, case, case.ok())
    with pytest.raises(MissingAPIKeyError) as info:
        case.generate(no_keys)
    assert ENV_NAMES[case.name] in str(info.value)
    assert "~/.env" in str(info.value)
    assert not mock.calls


ENV_NAMES = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY", "fal": "FAL_KEY"}


@cases
def test_unavailable_reason_names_the_variable_to_set(case, settings, no_keys):
    provider = case.factory()
    assert provider.unavailable_reason(settings) is None
    assert provider.unavailable_reason(no_keys) == f"no API key (set {ENV_NAMES[case.name]})"


@cases
@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_key_is_an_authentication_error_that_never_shows_it(
    case, status, mock, settings
):
    route = first_route(mock, case, case.error(status, "The key you sent is not valid here."))
    with pytest.raises(AuthenticationError) as info:
        case.generate(settings)
    err = info.value
    assert "rejected the API key" in str(err)
    assert "The key you sent is not valid here." in str(err)
    assert ENV_NAMES[case.name] in str(err)
    assert err.status_code == status and err.provider == case.name
    assert route.call_count == 1  # never retried


@cases
def test_a_key_echoed_by_the_provider_is_scrubbed_from_the_message(case, mock, settings):
    echoed = f"API key {KEYS[case.name]} is not valid."
    first_route(mock, case, case.error(400, echoed))
    with pytest.raises(RequestRejectedError) as info:
        case.generate(settings)
    assert "API key *** is not valid." in str(info.value)


@cases
def test_the_providers_error_message_is_shown_verbatim(case, mock, settings):
    words = "Prompt exceeds 4000 characters; shorten it (see https://example.test/limits)."
    first_route(mock, case, case.error(400, words))
    with pytest.raises(RequestRejectedError) as info:
        case.generate(settings)
    assert words in str(info.value)
    assert info.value.detail == words
    assert "HTTP 400" in str(info.value)


@cases
def test_429_is_retried_after_the_delay_retry_after_asks(case, mock, settings, sleeps):
    limited = case.error(429, "Slow down.")
    limited.headers["Retry-After"] = "2"
    route = first_route(mock, case, limited, case.ok())
    g = case.generate(settings)
    assert g.png_bytes
    assert route.call_count == 2
    assert sleeps.delays[0] == 2.0


@cases
def test_429_without_retry_after_backs_off_exponentially_then_gives_up(
    case, mock, settings, sleeps
):
    route = first_route(mock, case, *[case.error(429, "Too many requests, calm down.")] * 4)
    with pytest.raises(RateLimitError) as info:
        case.generate(settings)
    assert route.call_count == 4  # first try + 3 retries
    assert sleeps.delays == [1.0, 2.0, 4.0]
    assert "Too many requests, calm down." in str(info.value)
    assert "3 retries" in str(info.value)


@cases
def test_an_http_date_retry_after_is_honoured(case, mock, settings, sleeps):
    limited = case.error(429, "Slow down.")
    limited.headers["Retry-After"] = email.utils.formatdate(time.time() + 30, usegmt=True)
    first_route(mock, case, limited, case.ok())
    case.generate(settings)
    assert 25 <= sleeps.delays[0] <= 31


@cases
def test_a_retry_after_longer_than_a_minute_is_reported_not_waited_for(
    case, mock, settings, sleeps
):
    limited = case.error(429, "Daily quota used up.")
    limited.headers["Retry-After"] = "3600"
    route = first_route(mock, case, limited, case.ok())
    with pytest.raises(RateLimitError, match="Daily quota used up") as info:
        case.generate(settings)
    assert "3600 s" in str(info.value)
    assert route.call_count == 1 and sleeps.delays == []


def unavailable(case: Case, retry_after: str = "1") -> httpx.Response:
    """A 503 that says the request was not taken on, and when to come back."""
    answer = case.error(503, "Overloaded, try again later.")
    answer.headers["Retry-After"] = retry_after
    return answer


# A plain 5xx or a dropped connection after sending may already be billed: those are not
# repeated (tests/test_no_double_billing.py). These four pin the repeats that are safe.


@cases
def test_a_5xx_is_retried_once_then_succeeds(case, mock, settings, sleeps):
    route = first_route(mock, case, unavailable(case), case.ok())
    assert case.generate(settings).png_bytes
    assert route.call_count == 2
    assert sleeps.delays[0] == 1.0


@cases
def test_two_5xx_in_a_row_are_a_server_error(case, mock, settings):
    route = first_route(mock, case, unavailable(case), case.error(502, "Bad gateway."))
    with pytest.raises(ServerError) as info:
        case.generate(settings)
    assert type(info.value) is ServerError
    assert info.value.status_code == 502 and "Bad gateway." in str(info.value)
    assert route.call_count == 2


@cases
def test_a_refused_connection_is_retried_once(case, mock, settings):
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    route = first_route(mock, case, refused, case.ok())
    assert case.generate(settings).png_bytes
    assert route.call_count == 2


@cases
def test_two_refused_connections_are_a_connection_failure(case, mock, settings):
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    route = first_route(mock, case, refused, refused)
    with pytest.raises(ConnectionFailedError, match="refused the connection") as info:
        case.generate(settings)
    assert info.value.provider == case.name
    assert route.call_count == 2


@cases
def test_a_timeout_is_not_retried(case, mock, settings):
    route = first_route(mock, case, httpx.ReadTimeout("read timed out"), case.ok())
    with pytest.raises(ServerTimeoutError):
        case.generate(settings)
    assert route.call_count == 1


@cases
def test_an_html_error_page_is_described_not_dumped(case, mock, settings):
    page = httpx.Response(404, text="<html><body>Not Found</body></html>")
    first_route(mock, case, page)
    with pytest.raises(RequestRejectedError, match="HTTP 404 with an HTML page"):
        case.generate(settings)


@cases
def test_a_success_that_is_not_json_is_a_bad_response(case, mock, settings):
    first_route(mock, case, httpx.Response(200, text="upstream says hi"))
    with pytest.raises(BadResponseError, match="not JSON"):
        case.generate(settings)


def test_each_provider_sends_only_its_own_key_to_its_own_host(mock, settings):
    """One image from each: the router's teardown checks every header of every request."""
    for case in CASES:
        first_route(mock, case, case.ok())
        case.generate(settings)
        assert_clean(repr(case.factory()), what="repr(provider)")
        assert_clean(repr(get_provider(case.name)), what="repr(provider)")
    hosts = {call.request.url.host for call in mock.calls}
    assert hosts == {
        "generativelanguage.googleapis.com",
        "api.openai.com",
        "queue.fal.run",
        "v3.fal.media",
    }
    download = next(c.request for c in mock.calls if c.request.url.host == "v3.fal.media")
    assert "authorization" not in download.headers
    gemini = next(c.request for c in mock.calls if c.request.url.host.startswith("generative"))
    assert gemini.headers["x-goog-api-key"] == KEYS["gemini"]
    assert "authorization" not in gemini.headers


def test_the_registry_finds_each_cloud_provider():
    assert isinstance(get_provider("gemini"), GeminiProvider)
    assert isinstance(get_provider("openai"), OpenAIProvider)
    assert isinstance(get_provider("fal"), FalProvider)


# -- _cloud* units -----------------------------------------------------------------------


def test_a_key_is_never_attached_to_another_host_or_plain_http(settings):
    key = settings.key_for("fal")
    fal = _cloud.Service("fal", "fal.ai", "fal.run", "Authorization", "Key ", subdomains=True)
    assert fal.auth_headers(key, "https://queue.fal.run/x") == {
        "Authorization": "Key " + KEYS["fal"]
    }
    for url in (
        "http://queue.fal.run/x",
        "https://v3.fal.media/x.png",
        "https://evilfal.run/x",
        "https://queue.fal.run.evil.test/x",
    ):
        with pytest.raises(BadResponseError) as info:
            fal.auth_headers(key, url)
        assert KEYS["fal"] not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Incorrect API key provided: sk-SENTI************cdef. See docs.",
            "Incorrect API key provided: ***. See docs.",
        ),
        ("key sk-SENTINEL-openai-0123456789abcdef refused", "key *** refused"),
        ("plain words", "plain words"),
    ],
)
def test_scrub_removes_whole_and_partly_masked_keys(text, expected, settings):
    assert _cloud_errors.scrub(text, settings) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1024, 1024), "a"), ((1536, 1024), "b"), ((832, 1216), "c"), ((1100, 1000), "a")],
)
def test_nearest_picks_the_closest_aspect_ratio(size, expected):
    options = [("a", 1, 1), ("b", 3, 2), ("c", 2, 3)]
    assert _cloud_images.nearest(*size, options) == expected


def test_backoff_doubles_and_is_capped():
    policy = _cloud_send.RetryPolicy(jitter=0.0, backoff_s=1.0, backoff_max_s=5.0)
    assert [policy.backoff(i) for i in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittery = _cloud_send.RetryPolicy(jitter=0.5)
    assert all(1.0 <= jittery.backoff(0) <= 1.5 for _ in range(50))


def test_image_mime_is_read_from_the_bytes():
    from cloud_fixtures import image_bytes

    assert _cloud_images.image_mime(image_bytes(fmt="PNG")) == "image/png"
    assert _cloud_images.image_mime(image_bytes(fmt="JPEG")) == "image/jpeg"
    assert _cloud_images.image_mime(image_bytes(fmt="WEBP")) == "image/webp"
    assert _cloud_images.image_mime(image_bytes(fmt="GIF")) == "image/gif"
    assert _cloud_images.image_mime(b"nope") is None
    mime, data = _cloud_images.encode_reference(image_bytes(fmt="BMP"))
    assert mime == "image/png"
    assert base64.b64decode(data).startswith(b"\x89PNG")  # converted, not sent as BMP


# -- keywords: refused before anything is sent ----------------------------------------------

KEYWORD_MODELS = ["gemini-flash", "gpt-image", "dall-e-3", "flux-schnell", "z-image"]


def mock_every_cloud_route(router) -> list[Any]:
    """A route for every cloud endpoint (any model), so a request that slipped through
    would be recorded rather than refused by the router."""
    return [
        router.post(url__startswith="https://generativelanguage.googleapis.com/"),
        router.post(OPENAI_URL),
        router.route(url__startswith="https://queue.fal.run/"),
    ]


@pytest.mark.parametrize("model", KEYWORD_MODELS)
def test_a_misspelt_keyword_is_refused_with_a_suggestion_and_nothing_is_sent(model, mock, settings):
    routes = mock_every_cloud_route(mock)
    with pytest.raises(InvalidRequestError, match=r"does not take 'sed'\. Did you mean 'seed'\?"):
        run(px.agenerate("a lighthouse", model=model, sed=7, settings=settings))
    with pytest.raises(InvalidRequestError, match=r"Did you mean 'seeds'\?"):
        run(px.arun_batch(["a", "b"], model=model, sed=7, settings=settings, progress=False))
    assert not any(route.called for route in routes)
    assert mock.calls.call_count == 0


def test_an_option_of_one_model_is_taken_by_it_and_refused_for_others(mock, settings):
    routes = mock_every_cloud_route(mock)
    for model, words in [
        ("gemini-flash", "Gemini 2.5 Flash Image does not take quality; only OpenAI models do."),
        ("gpt-image", "GPT Image 1 does not take style; only DALL·E 3 and Recraft V3 do."),
        ("flux-schnell", "FLUX.1 schnell does not take strength; only Z-Image turbo does."),
    ]:
        option = words.split(" does not take ")[1].split(";")[0]
        with pytest.raises(InvalidRequestError) as info:
            run(px.agenerate("a", model=model, settings=settings, **{option: "x"}))
        assert str(info.value) == words
    assert mock.calls.call_count == 0
    routes[1].respond(200, json=openai_image())
    run(px.agenerate("a", model="dall-e-3", style="natural", quality="hd", settings=settings))
    body = json.loads(routes[1].calls.last.request.content)
    assert body["style"] == "natural" and body["quality"] == "hd"


@pytest.mark.parametrize(
    ("model", "field", "value", "words"),
    [
        ("gemini-flash", "steps", 20, "does not take steps; only your own server's models do"),
        ("gpt-image", "cfg_scale", 4.0, "does not take cfg_scale"),
        ("dall-e-3", "seed", 7, "only your own server's models and fal.ai models do"),
        ("flux-schnell", "lora_scale", 0.5, "does not take lora_scale"),
        ("gemini-pro", "ip_adapter_scale", 0.3, "does not take ip_adapter_scale"),
    ],
)
def test_a_field_the_model_ignores_is_refused_not_dropped(
    model, field, value, words, mock, settings
):
    mock_every_cloud_route(mock)
    with pytest.raises(InvalidRequestError, match=words):
        run(px.agenerate("a", model=model, settings=settings, **{field: value}))
    assert mock.calls.call_count == 0
    # The defaults (what a replay or the panel passes) are not "given":
    build_request("a", model, seed=None, steps=None, ip_adapter_scale=0.7, lora_scale=0.8)


def test_fal_options_are_the_declared_ones(mock, settings):
    mock_every_cloud_route(mock)
    with pytest.raises(InvalidRequestError, match=r"does not take 'num_images'.*Allowed keywords"):
        run(px.agenerate("a", model="flux-schnell", num_images=4, settings=settings))
    with pytest.raises(InvalidRequestError, match="does not take 'num_images'"):
        FalProvider().validate(
            GenerationRequest(
                prompt="a", model="flux-schnell", provider="fal", extra={"num_images": 4}
            )
        )
    assert mock.calls.call_count == 0
