"""The cloud providers' send path: whatever the transport raises, a package error comes out.

The same sweep as tests/test_network_trust.py (every httpx exception class, idna's,
``UnicodeError``, ``ValueError``, an ``OverflowError`` and an exception group from the
sockets), raised by respx for each provider's first request and for fal's status poll.
"""

from __future__ import annotations

import httpx
import pytest
from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import fal_submit, fal_urls
from test_cloud_common import CASES, FAL_API, Case, first_route
from test_network_trust import IDS, TRANSPORT_EXCEPTIONS, assert_a_sentence

from pixery_widgets import PixeryError

cases = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
exceptions = pytest.mark.parametrize("exc", TRANSPORT_EXCEPTIONS, ids=IDS)


@cases
@exceptions
def test_every_exception_on_a_cloud_request_becomes_a_package_error(
    case: Case, mock, settings, exc
):
    first_route(mock, case, exc, exc)  # a second time too, where a repeat is safe
    with pytest.raises(PixeryError) as info:
        case.generate(settings)
    assert_a_sentence(info.value)
    assert info.value.provider == case.name


@exceptions
def test_every_exception_on_a_fal_status_poll_becomes_a_package_error(mock, settings, exc):
    fal = next(c for c in CASES if c.name == "fal")
    mock.post(f"https://queue.fal.run/{FAL_API}").mock(
        return_value=httpx.Response(200, json=fal_submit(FAL_API))
    )
    mock.get(fal_urls(FAL_API)["status_url"]).mock(side_effect=[exc, exc])
    mock.put(fal_urls(FAL_API)["cancel_url"]).mock(return_value=httpx.Response(202))
    with pytest.raises(PixeryError) as info:
        fal.generate(settings)
    assert_a_sentence(info.value)
