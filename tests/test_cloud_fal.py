"""fal.ai's queue: submit, poll, result, download, cancellation and progress."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re

import httpx
import pytest
from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import (
    FAL_MEDIA,
    FAL_QUEUE,
    KEYS,
    PNG,
    fal_error,
    fal_result,
    fal_status,
    fal_submit,
    fal_urls,
    image_bytes,
    mock_fal_success,
    run,
)

import pixery_widgets as px
from pixery_widgets import (
    AuthenticationError,
    BadResponseError,
    ContentRefusedError,
    ImageDecodeError,
    InvalidRequestError,
    RequestRejectedError,
    ServerError,
    ServerTimeoutError,
)
from pixery_widgets.core.catalog import CATALOG
from pixery_widgets.providers.fal import FalProvider, FalQueueStatus
from pixery_widgets.session.validation import build_request

FLUX = "fal-ai/flux/schnell"
ZIMG = "fal-ai/z-image/turbo"
ZIMG_I2I = "fal-ai/z-image/turbo/image-to-image"


def request(model="flux-schnell", **fields):
    return build_request("a castle in fog", model, **fields)


def submit_route(router, api_id=FLUX, **kw):
    return router.post(f"{FAL_QUEUE}/{api_id}").respond(200, json=fal_submit(api_id, **kw))


def sent_body(route) -> dict:
    return json.loads(route.calls.last.request.content)


def test_the_whole_queue_lifecycle(mock, settings):
    submit = submit_route(mock)
    urls = fal_urls(FLUX)
    status = mock.get(urls["status_url"]).mock(
        side_effect=[
            httpx.Response(202, json=fal_status("IN_QUEUE", 2)),
            httpx.Response(202, json=fal_status("IN_QUEUE", 1)),
            httpx.Response(202, json=fal_status("IN_PROGRESS")),
            httpx.Response(200, json=fal_status("COMPLETED")),
        ]
    )
    result = mock.get(urls["response_url"]).respond(200, json=fal_result(seed=777))
    download = mock.get(FAL_MEDIA).respond(200, content=PNG)
    seen: list[FalQueueStatus] = []

    g = run(FalProvider().generate(request(seed=777), settings, on_status=seen.append))

    assert submit.call_count == 1 and status.call_count == 4
    assert result.call_count == 1 and download.call_count == 1
    assert [(s.state, s.queue_position) for s in seen] == [
        ("IN_QUEUE", 2),
        ("IN_QUEUE", 1),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert (
        seen[0].request_id == "req-0001" and seen[0].describe() == "queued at fal.ai (position 2)"
    )
    assert g.png_bytes == PNG and g.seed == 777 and g.params["seed"] == 777
    assert sent_body(submit) == {
        "prompt": "a castle in fog",
        "image_size": "square_hd",
        "seed": 777,
    }
    assert g.cost_usd == CATALOG["flux-schnell"].cost_per_image
    assert (g.params["width"], g.params["height"]) == (64, 48)


def test_the_image_host_gets_no_authorization_header(mock, settings):
    submit_route(mock)
    mock_fal_success(mock, FLUX)
    run(FalProvider().generate(request(), settings))
    by_host = {c.request.url.host: c.request for c in mock.calls}
    assert by_host["queue.fal.run"].headers["authorization"] == "Key " + KEYS["fal"]
    assert "authorization" not in by_host["v3.fal.media"].headers


def test_the_poll_interval_grows_and_is_capped(mock, settings, sleeps):
    submit_route(mock)
    urls = fal_urls(FLUX)
    mock.get(urls["status_url"]).mock(
        side_effect=[httpx.Response(202, json=fal_status("IN_PROGRESS"))] * 9
        + [httpx.Response(200, json=fal_status("COMPLETED"))]
    )
    mock.get(urls["response_url"]).respond(200, json=fal_result())
    mock.get(FAL_MEDIA).respond(200, content=PNG)
    run(FalProvider().generate(request(), settings))
    delays = sleeps.delays
    assert len(delays) == 9
    assert delays[:3] == [0.25, 0.375, 0.5625]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == 2.0 and delays[-3:] == [2.0, 2.0, 2.0]


def test_cancelling_the_task_cancels_the_request_at_fal(mock, settings):
    submit_route(mock)
    urls = fal_urls(FLUX)
    status = mock.get(urls["status_url"]).respond(202, json=fal_status("IN_QUEUE", 5))
    cancel = mock.put(urls["cancel_url"]).respond(202, json={"status": "CANCELLATION_REQUESTED"})

    async def scenario():
        task = asyncio.create_task(FalProvider().generate(request(), settings))
        for _ in range(10_000):
            if status.call_count >= 2:
                break
            await asyncio.sleep(0)
        assert status.call_count >= 2, "polling had not started when the task was cancelled"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert cancel.call_count == 1
    assert cancel.calls.last.request.headers["authorization"] == "Key " + KEYS["fal"]


def test_a_request_that_waits_too_long_is_cancelled_and_reported(mock, settings):
    submit_route(mock)
    urls = fal_urls(FLUX)
    mock.get(urls["status_url"]).respond(202, json=fal_status("IN_QUEUE", 40))
    cancel = mock.put(urls["cancel_url"]).respond(202, json={"status": "CANCELLATION_REQUESTED"})
    with pytest.raises(ServerTimeoutError, match=r"did not finish within .* IN_QUEUE"):
        run(FalProvider(max_wait_s=0).generate(request(), settings))
    assert cancel.call_count == 1


def test_a_failing_cancel_does_not_hide_the_original_error(mock, settings):
    submit_route(mock)
    urls = fal_urls(FLUX)
    mock.get(urls["status_url"]).respond(500, json=fal_error("status store down"))
    cancel = mock.put(urls["cancel_url"]).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ServerError, match="status store down"):
        run(FalProvider().generate(request(), settings))
    assert cancel.called  # the cancel was tried, failed, and did not replace the error


@pytest.mark.parametrize(
    ("size", "preset"),
    [
        ((1024, 1024), "square_hd"),
        ((832, 1216), "portrait_4_3"),
        ((768, 1344), "portrait_16_9"),
        ((1216, 832), "landscape_4_3"),
        ((1344, 768), "landscape_16_9"),
    ],
)
def test_image_size_is_the_preset_nearest_the_requested_aspect(mock, settings, size, preset):
    submit = submit_route(mock)
    mock_fal_success(mock, FLUX)
    g = run(FalProvider().generate(request(width=size[0], height=size[1]), settings))
    assert sent_body(submit)["image_size"] == preset and g.params["image_size"] == preset


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ((1024, 1024), "1:1"),
        ((1344, 768), "16:9"),
        ((768, 1344), "9:16"),
        ((1216, 832), "4:3"),
        ((832, 1216), "3:4"),
    ],
)
def test_imagen_takes_an_aspect_ratio_instead(mock, settings, size, ratio):
    api_id = "fal-ai/imagen4/preview"
    submit = submit_route(mock, api_id)
    mock_fal_success(mock, api_id)
    run(FalProvider().generate(request("imagen4", width=size[0], height=size[1]), settings))
    body = sent_body(submit)
    assert body["aspect_ratio"] == ratio and "image_size" not in body


def test_z_image_with_a_reference_goes_to_image_to_image_with_a_data_uri(mock, settings):
    ref = image_bytes(32, 32, fmt="JPEG")
    plain = submit_route(mock, ZIMG)
    i2i = submit_route(mock, ZIMG_I2I)
    mock_fal_success(mock, ZIMG_I2I)
    g = run(FalProvider().generate(request("z-image", reference=ref), settings))
    assert not plain.called and i2i.call_count == 1
    body = sent_body(i2i)
    assert body["image_url"].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(body["image_url"].split(",", 1)[1]) == ref
    assert body["strength"] == 0.6
    assert g.params["api_id"] == ZIMG_I2I and "image_url" not in g.params
    assert g.cost_usd == CATALOG["z-image-turbo"].estimated_cost(64, 48)


def test_z_image_strength_comes_from_extra_and_is_checked(mock, settings):
    i2i = submit_route(mock, ZIMG_I2I)
    mock_fal_success(mock, ZIMG_I2I)
    run(
        FalProvider().generate(request("z-image", reference=PNG, extra={"strength": 0.3}), settings)
    )
    assert sent_body(i2i)["strength"] == 0.3
    with pytest.raises(InvalidRequestError, match="strength must be between 0 and 1"):
        FalProvider().validate(request("z-image", extra={"strength": 1.5}))


def test_z_image_without_a_reference_uses_the_plain_endpoint(mock, settings):
    plain = submit_route(mock, ZIMG)
    mock_fal_success(mock, ZIMG)
    run(FalProvider().generate(request("z-image"), settings))
    body = sent_body(plain)
    assert "image_url" not in body and "strength" not in body


def test_other_extras_are_passed_through_to_fal(mock, settings):
    submit = submit_route(mock)
    mock_fal_success(mock, FLUX)
    run(
        FalProvider().generate(
            request(extra={"num_inference_steps": 2, "enable_safety_checker": False}), settings
        )
    )
    body = sent_body(submit)
    assert body["num_inference_steps"] == 2 and body["enable_safety_checker"] is False


def test_status_urls_are_built_from_the_request_id_when_the_answer_lacks_them(mock, settings):
    api_id = "fal-ai/flux-pro/v1.1-ultra"
    mock.post(f"{FAL_QUEUE}/{api_id}").respond(200, json={"request_id": "req-0001"})
    status = mock.get(f"{FAL_QUEUE}/fal-ai/flux-pro/requests/req-0001/status").respond(
        200, json=fal_status("COMPLETED")
    )
    mock.get(f"{FAL_QUEUE}/fal-ai/flux-pro/requests/req-0001").respond(200, json=fal_result())
    mock.get(FAL_MEDIA).respond(200, content=PNG)
    run(FalProvider().generate(request("flux-ultra"), settings))
    assert status.called


def test_a_status_url_on_another_host_never_gets_the_key(mock, settings):
    urls = fal_urls(FLUX)
    answer = {**fal_submit(FLUX), "status_url": "https://collector.example/steal"}
    mock.post(f"{FAL_QUEUE}/{FLUX}").respond(200, json=answer)
    elsewhere = mock.get("https://collector.example/steal").respond(
        200, json=fal_status("COMPLETED")
    )
    mock.put(urls["cancel_url"]).respond(202, json={})
    with pytest.raises(BadResponseError, match=re.escape("only ever sent to fal.run")):
        run(FalProvider().generate(request(), settings))
    assert not elsewhere.called


def test_a_result_without_images_is_a_refusal(mock, settings):
    submit_route(mock)
    mock_fal_success(mock, FLUX, result={"images": [], "seed": 1})
    with pytest.raises(ContentRefusedError, match="without an image"):
        run(FalProvider().generate(request(), settings))


def test_a_validation_error_lists_fields_in_fals_words(mock, settings):
    detail = [
        {
            "loc": ["body", "image_size"],
            "msg": "value is not a valid enumeration member",
            "type": "type_error.enum",
        }
    ]
    mock.post(f"{FAL_QUEUE}/{FLUX}").respond(422, json=fal_error(detail))
    with pytest.raises(
        RequestRejectedError, match="image_size: value is not a valid enumeration member"
    ):
        run(FalProvider().generate(request(), settings))


def test_a_locked_account_is_not_reported_as_a_rejected_key(mock, settings):
    words = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
    route = mock.post(f"{FAL_QUEUE}/{FLUX}").respond(403, json=fal_error(words))
    with pytest.raises(RequestRejectedError) as info:
        run(FalProvider().generate(request(), settings))
    err = info.value
    assert not isinstance(err, AuthenticationError)
    assert str(err) == (
        f"fal.ai refused the request because your account is locked (HTTP 403): {words} "
        "The API key itself was accepted."
    )
    assert err.status_code == 403 and err.reason == "account locked"
    assert route.call_count == 1  # not retried: waiting does not unlock an account


def test_an_error_on_the_result_is_reported(mock, settings):
    submit_route(mock)
    urls = fal_urls(FLUX)
    mock.get(urls["status_url"]).respond(200, json=fal_status("COMPLETED"))
    mock.get(urls["response_url"]).respond(422, json=fal_error("Prompt contains unsafe content."))
    with pytest.raises(RequestRejectedError, match=re.escape("Prompt contains unsafe content.")):
        run(FalProvider().generate(request(), settings))


def test_a_download_that_is_not_an_image_is_an_image_decode_error(mock, settings):
    submit_route(mock)
    urls = fal_urls(FLUX)
    mock.get(urls["status_url"]).respond(200, json=fal_status("COMPLETED"))
    mock.get(urls["response_url"]).respond(200, json=fal_result())
    mock.get(FAL_MEDIA).respond(200, content=b"<html>gone</html>")
    with pytest.raises(ImageDecodeError) as info:
        run(FalProvider().generate(request(), settings))
    assert info.value.provider == "fal"


def test_a_download_retried_once_after_a_dropped_connection(mock, settings):
    submit_route(mock)
    urls = fal_urls(FLUX)
    mock.get(urls["status_url"]).respond(200, json=fal_status("COMPLETED"))
    mock.get(urls["response_url"]).respond(200, json=fal_result())
    download = mock.get(FAL_MEDIA).mock(
        side_effect=[httpx.ReadError("reset"), httpx.Response(200, content=PNG)]
    )
    assert run(FalProvider().generate(request(), settings)).png_bytes == PNG
    assert download.call_count == 2


def test_a_broken_progress_callback_does_not_lose_the_image(mock, settings, caplog):
    submit_route(mock)
    mock_fal_success(mock, FLUX)

    def explode(status):
        raise RuntimeError("widget gone")

    g = run(FalProvider().generate(request(), settings, on_status=explode))
    assert g.png_bytes == PNG
    assert any("on_status callback failed" in r.getMessage() for r in caplog.records)


def test_the_public_api_makes_a_fal_image_with_its_seed(mock, settings):
    submit = submit_route(mock)
    mock_fal_success(mock, FLUX)
    g = run(px.agenerate("a castle", model="flux-schnell", seed=5, settings=settings))
    assert g.provider == "fal" and g.seed == 424242  # the seed fal reports
    assert sent_body(submit)["seed"] == 5
