"""A paid request is never sent twice when the first one may already have been billed.

Repeated: what certainly never left (a refused connection, a name that did not resolve), a
429 (the provider did not run it), a 503 with Retry-After (it did not take it on), any
read (fal's status and result, image downloads), and a fal.ai 5xx (fal documents those as
not billed). Not repeated: another 5xx or a connection dropped after the request was sent
to Gemini or OpenAI, nor a dropped fal submission. docs/backends.md ("Retries") says the same in words;
respx counts the calls.
"""

from __future__ import annotations

import httpx
import pytest
from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import FAL_MEDIA, PNG, fal_result, fal_status, fal_submit, fal_urls, run
from test_cloud_common import CASES, FAL_API, Case, first_route

from pixery_widgets import ConnectionFailedError, ServerError
from pixery_widgets.providers.fal import FalProvider
from pixery_widgets.session.validation import build_request

NOT_REPEATED = "not repeated automatically"
PAID_ONLY = [c for c in CASES if c.name != "fal"]  # fal.ai does not bill a 5xx

cases = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
paid_only = pytest.mark.parametrize("case", PAID_ONLY, ids=[c.name for c in PAID_ONLY])

DROPS = [
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.ReadError("[Errno 104] Connection reset by peer"),
    httpx.WriteError("[Errno 32] Broken pipe"),
]


@paid_only
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_to_a_paid_request_is_not_repeated(case: Case, mock, settings, sleeps, status):
    route = first_route(mock, case, case.error(status, "Something broke."), case.ok())
    with pytest.raises(ServerError) as info:
        case.generate(settings)
    assert route.call_count == 1 and sleeps.delays == []
    assert info.value.status_code == status and "Something broke." in str(info.value)
    assert NOT_REPEATED in str(info.value)


def test_a_fal_5xx_is_repeated_once_since_fal_does_not_bill_it(mock, settings, sleeps):
    fal = next(c for c in CASES if c.name == "fal")
    route = first_route(mock, fal, fal.error(500, "Runner crashed."), fal.ok())
    assert fal.generate(settings).png_bytes
    assert route.call_count == 2 and sleeps.delays == [1.0]


@cases
@pytest.mark.parametrize("drop", DROPS, ids=["remote-protocol", "read", "write"])
def test_a_connection_dropped_after_sending_is_not_repeated(case: Case, mock, settings, drop):
    route = first_route(mock, case, drop, case.ok())
    with pytest.raises(ConnectionFailedError, match=NOT_REPEATED) as info:
        case.generate(settings)
    assert route.call_count == 1
    assert info.value.request_sent and info.value.provider == case.name


@cases
def test_a_request_that_never_left_is_repeated_once(case: Case, mock, settings):
    unresolved = httpx.ConnectError("[Errno -2] Name or service not known")
    route = first_route(mock, case, unresolved, case.ok())
    assert case.generate(settings).png_bytes
    assert route.call_count == 2


@paid_only
def test_a_timeout_is_not_repeated_and_says_why(case: Case, mock, settings):
    route = first_route(mock, case, httpx.ReadTimeout("read timed out"), case.ok())
    with pytest.raises(ConnectionFailedError, match=NOT_REPEATED):
        case.generate(settings)
    assert route.call_count == 1


def test_fal_reads_are_repeated_after_a_5xx_or_a_drop_but_the_submission_is_sent_once(
    mock, settings, sleeps
):
    urls = fal_urls(FAL_API)
    submit = mock.post(f"https://queue.fal.run/{FAL_API}").mock(
        return_value=httpx.Response(200, json=fal_submit(FAL_API))
    )
    status = mock.get(urls["status_url"]).mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json=fal_status("COMPLETED"))]
    )
    result = mock.get(urls["response_url"]).mock(
        side_effect=[DROPS[1], httpx.Response(200, json=fal_result())]
    )
    image = mock.get(FAL_MEDIA).mock(
        side_effect=[
            DROPS[0],
            httpx.Response(200, content=PNG, headers={"content-type": "image/png"}),
        ]
    )
    generation = run(
        FalProvider().generate(build_request("a lighthouse", "flux-schnell"), settings)
    )
    assert generation.png_bytes == PNG
    assert submit.call_count == 1
    assert (status.call_count, result.call_count, image.call_count) == (2, 2, 2)
